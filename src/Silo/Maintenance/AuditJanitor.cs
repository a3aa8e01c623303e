using System.Globalization;
using Wharf.Contracts.Grains;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Maintenance;

/// <summary>
/// Keeps the audit log to <c>Wharf:Audit:RetentionDays</c>: every 10 minutes, each hour older than the retention of
/// which this node still holds events (and owns the log) is dropped through its grain, on every owner at once.
/// </summary>
public sealed class AuditJanitor(RecordStore records, ReplicatedLogs logs, WharfOptions options, IGrainFactory grains, ILogger<AuditJanitor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMinutes(1), stoppingToken);
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await SweepAsync(DateTimeOffset.UtcNow - TimeSpan.FromDays(options.Audit.RetentionDays), stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "audit retention sweep failed; next try in 10 minutes");
                }
                await Task.Delay(TimeSpan.FromMinutes(10), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Drops every hour this node holds that ended before <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> SweepAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var expired = new List<string>();
        string? after = null;
        // One key per stored batch: walk hour by hour, seeking past each hour once it is seen.
        while (records.Scan("au/", after, 1) is [var first])
        {
            var hour = first.Key.Split('/')[0];
            if (!DateTime.TryParseExact(hour, "yyyyMMddHH", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var start)
                || new DateTimeOffset(start, TimeSpan.Zero).AddHours(1) > cutoff)
            {
                break;
            }
            if (logs.OwnedHere("h/" + hour))
            {
                expired.Add(hour);
            }
            after = hour + "/\uffff";
        }
        foreach (var hour in expired)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await grains.GetGrain<IAuditGrain>(hour).Drop();
            logger.LogInformation("audit log: dropped hour {Hour} (older than {Days} days)", hour, options.Audit.RetentionDays);
        }
        return expired.Count;
    }
}
