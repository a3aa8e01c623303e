using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Wharf.Gateway.Observability;

/// <summary>
/// Around every <c>/v2/</c> request: counts it by route, method and status, times it, counts body bytes both ways,
/// and hands one entry to the access log when it is on. Health, metrics and admin endpoints are not counted.
/// </summary>
public sealed class RequestObservationMiddleware(RequestDelegate next, WharfMetrics metrics, AccessLog accessLog)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v2"))
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var observation = new RequestObservation();
        context.Features.Set(observation);
        var request = context.Request;
        var hasBody = request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        CountingReadStream? body = null;
        var originalBody = request.Body;
        if (hasBody)
        {
            body = new CountingReadStream(originalBody);
            request.Body = body;
        }
        var isUpload = request.Path.Value is { } p && p.Contains("/blobs/uploads", StringComparison.Ordinal);
        if (isUpload)
        {
            metrics.UploadRequestsInFlight.Add(1);
        }
        try
        {
            await next(context);
        }
        finally
        {
            if (body is not null)
            {
                request.Body = originalBody;
            }
            if (isUpload)
            {
                metrics.UploadRequestsInFlight.Add(-1);
            }
            Record(context, observation, started, body?.Count ?? 0);
        }
    }

    private void Record(HttpContext context, RequestObservation observation, long started, long received)
    {
        var elapsed = Stopwatch.GetElapsedTime(started);
        var response = context.Response;
        var status = context.RequestAborted.IsCancellationRequested && !response.HasStarted ? 499 : response.StatusCode;
        // Handlers always set Content-Length on bodies they send (blobs, manifests, listings, errors); HEAD sends none.
        var sent = HttpMethods.IsHead(context.Request.Method) ? 0 : response.ContentLength ?? 0;
        var route = new KeyValuePair<string, object?>("route", observation.RouteLabel);
        var method = new KeyValuePair<string, object?>("method", MethodLabel(context.Request.Method));
        var code = new KeyValuePair<string, object?>("code", StatusLabel(status));
        metrics.Requests.Add(1, route, method, code);
        metrics.RequestDuration.Record(elapsed.TotalSeconds, route, method, code);
        if (received > 0)
        {
            metrics.Received.Add(received, route);
        }
        if (sent > 0)
        {
            metrics.Sent.Add(sent, route);
        }
        if (accessLog.Enabled)
        {
            accessLog.Write(new AccessLogEntry(
                DateTimeOffset.UtcNow,
                context.Request.Method,
                observation.RouteLabel,
                context.Request.Path.Value ?? "",
                status,
                received,
                sent,
                elapsed.TotalMilliseconds,
                context.User.Identity?.IsAuthenticated == true ? context.User.Identity.Name : null,
                Activity.Current?.TraceId ?? default,
                context.Connection.RemoteIpAddress));
        }
    }

    // Interned label values: no string is built per request.
    private static string MethodLabel(string method) => method switch
    {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "other",
    };

    private static readonly string[] StatusLabels = [.. Enumerable.Range(0, 600).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private static string StatusLabel(int status) => status is >= 0 and < 600 ? StatusLabels[status] : "other";
}
