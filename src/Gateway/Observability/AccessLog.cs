using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Wharf.Gateway.Observability;

/// <summary>
/// One served request as the access log records it. No query string, headers or bodies: nothing secret. The trace id
/// and client address stay structs/objects here and become text on the writer's thread, not the request's.
/// </summary>
public sealed record AccessLogEntry(
    DateTimeOffset Time,
    string Method,
    string Route,
    string Path,
    int Status,
    long BytesIn,
    long BytesOut,
    double DurationMs,
    string? Identity,
    ActivityTraceId TraceId,
    IPAddress? Client);

/// <summary>
/// The access log (<c>Wharf:AccessLog:Enabled</c>, off by default), written off the hot path: a request only puts its
/// entry on a bounded queue; a background writer logs it under the category <c>Wharf.AccessLog</c>, so it goes wherever
/// the host's logging goes (the console, as JSON with <c>Logging:Console:FormatterName=json</c>). When the writer
/// falls behind, entries are dropped and counted rather than slowing requests down.
/// </summary>
public sealed class AccessLog : BackgroundService
{
    public const string Category = "Wharf.AccessLog";

    private readonly Channel<AccessLogEntry> _queue = Channel.CreateBounded<AccessLogEntry>(
        new BoundedChannelOptions(65536) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private readonly ILogger _logger;
    private long _dropped;

    public AccessLog(IConfiguration configuration, ILoggerFactory loggers)
    {
        Enabled = configuration.GetValue("Wharf:AccessLog:Enabled", false);
        _logger = loggers.CreateLogger(Category);
    }

    public bool Enabled { get; }

    public long Dropped => Interlocked.Read(ref _dropped);

    public void Write(AccessLogEntry entry)
    {
        if (!_queue.Writer.TryWrite(entry))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }
        try
        {
            await foreach (var e in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                Log(e);
            }
        }
        catch (OperationCanceledException)
        {
        }
        // Whatever was served before the stop is still written.
        while (_queue.Reader.TryRead(out var e))
        {
            Log(e);
        }
    }

    private void Log(AccessLogEntry e) =>
        _logger.LogInformation(
            "{Method} {Path} {Status} {BytesIn} {BytesOut} {DurationMs:0.###}ms route={Route} identity={Identity} client={Client} trace={TraceId} at={Time}",
            e.Method, e.Path, e.Status, e.BytesIn, e.BytesOut, e.DurationMs, e.Route, e.Identity ?? "-", e.Client?.ToString() ?? "-", e.TraceId == default ? "-" : e.TraceId.ToHexString(), e.Time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
}
