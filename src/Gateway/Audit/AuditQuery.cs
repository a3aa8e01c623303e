using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Wharf.Contracts.Grains;

namespace Wharf.Gateway.Audit;

/// <summary>
/// <c>GET /admin/audit?from=&amp;to=&amp;repository=&amp;identity=&amp;action=&amp;limit=</c>: the audit log's events
/// between two times (ISO 8601; default the last 24 hours; at most 31 days), oldest first, filtered by exact
/// repository, identity and action, at most <c>limit</c> (100; at most 10,000) with <c>truncated</c> when more matched.
/// </summary>
public static class AuditQuery
{
    public static async Task<IResult> HandleAsync(HttpContext context, IGrainFactory grains)
    {
        var query = context.Request.Query;
        var now = DateTimeOffset.UtcNow;
        if (!TryTime(query["from"], now.AddDays(-1), out var from) || !TryTime(query["to"], now, out var to))
        {
            return Bad("from and to are ISO 8601 times, e.g. 2026-11-30T08:00:00Z");
        }
        if (to < from || to - from > TimeSpan.FromDays(31))
        {
            return Bad("to must not be before from, and the range at most 31 days");
        }
        var limit = 100;
        if (query["limit"] is [{ } l] && (!int.TryParse(l, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            return Bad("limit is 1 to 10000");
        }
        string? repository = query["repository"], identity = query["identity"], action = query["action"];
        var events = new List<AuditEvent>();
        var truncated = false;
        for (var hour = new DateTimeOffset(from.Year, from.Month, from.Day, from.Hour, 0, 0, TimeSpan.Zero); hour <= to && !truncated; hour = hour.AddHours(1))
        {
            var grain = grains.GetGrain<IAuditGrain>(AuditLog.HourOf(hour));
            string? after = null;
            while (!truncated)
            {
                var page = await grain.Read(after, 100);
                foreach (var batch in page.Batches)
                {
                    foreach (var line in Encoding.UTF8.GetString(batch).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var e = JsonSerializer.Deserialize(line, AuditJson.Default.AuditEvent);
                        if (e is null || e.Time < from || e.Time > to
                            || (repository is not null && e.Repository != repository)
                            || (identity is not null && e.Identity != identity)
                            || (action is not null && e.Action != action))
                        {
                            continue;
                        }
                        if (events.Count == limit)
                        {
                            truncated = true;
                            break;
                        }
                        events.Add(e);
                    }
                    if (truncated)
                    {
                        break;
                    }
                }
                if (!page.HasMore)
                {
                    break;
                }
                after = page.Keys[^1];
            }
        }
        // Batches from several gateways interleave within an hour: order by time.
        return Results.Json(new { from, to, truncated, events = events.OrderBy(e => e.Time).ToList() });
    }

    private static bool TryTime(string? text, DateTimeOffset fallback, out DateTimeOffset time)
    {
        time = fallback;
        return string.IsNullOrEmpty(text)
            || DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
    }

    private static IResult Bad(string detail) =>
        Results.Json(new { errors = new[] { new { code = "BAD_REQUEST", message = "bad audit query", detail } } }, statusCode: StatusCodes.Status400BadRequest);
}
