using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;

namespace Wharf.Gateway.Audit;

/// <summary>One audited event: who, from where, what, when, and the result. Never a credential or token.</summary>
public sealed record AuditEvent(
    [property: JsonPropertyName("time")] DateTimeOffset Time,
    [property: JsonPropertyName("action")] string Action,
    [property: JsonPropertyName("identity")] string Identity,
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("result")] string Result,
    [property: JsonPropertyName("status")] int Status,
    [property: JsonPropertyName("repository")] string? Repository = null,
    [property: JsonPropertyName("reference")] string? Reference = null,
    [property: JsonPropertyName("digest")] string? Digest = null,
    [property: JsonPropertyName("detail")] string? Detail = null,
    [property: JsonPropertyName("gateway")] string? Gateway = null);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditEvent))]
public sealed partial class AuditJson : JsonSerializerContext;

/// <summary>
/// The audit log's writer. A request only enqueues its event (a bounded channel, never a wait: when full, the event
/// is dropped and counted in <c>wharf_audit_events_dropped_total</c>); a background loop takes up to 1 s or 2,000
/// events, appends them as JSON lines to <see cref="AuditOptions.File"/> when set, and stores them in the cluster,
/// one batch per hour's <see cref="IAuditGrain"/> (retried, then dropped and counted when the cluster is away).
/// </summary>
public sealed class AuditLog : BackgroundService
{
    private const int MaxBatch = 2000;

    private readonly AuditOptions _options;
    private readonly IGrainFactory _grains;
    private readonly ILogger<AuditLog> _logger;
    private readonly Channel<AuditEvent> _queue;
    private readonly Observability.WharfMetrics _metrics;
    private readonly string _gateway = Environment.MachineName;

    public AuditLog(AuditOptions options, IGrainFactory grains, Observability.WharfMetrics metrics, ILogger<AuditLog> logger)
    {
        _options = options;
        _grains = grains;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<AuditEvent>(new BoundedChannelOptions(options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
        });
    }

    public AuditOptions Options => _options;

    /// <summary>Queues an event; returns at once.</summary>
    public void Record(AuditEvent e)
    {
        if (!_options.Enabled)
        {
            return;
        }
        if (!_queue.Writer.TryWrite(e with { Gateway = _gateway }))
        {
            _metrics.AuditDropped.Add(1, new KeyValuePair<string, object?>("reason", "queue_full"));
        }
    }

    private readonly SemaphoreSlim _writing = new(1, 1);

    /// <summary>Writes everything queued so far, and waits for a batch being written (tests, and shutdown).</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken);
        try
        {
            var batch = new List<AuditEvent>(MaxBatch);
            do
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var e))
                {
                    batch.Add(e);
                }
                await WriteAsync(batch, cancellationToken);
            }
            while (batch.Count == MaxBatch);
        }
        finally
        {
            _writing.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                // Events wait in the queue up to a second, so a busy gateway writes one batch a second, not one per request.
                if (_queue.Reader.Count < MaxBatch)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                }
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await FlushAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogWarning("audit log: {Count} events not stored at shutdown: {Error}", _queue.Reader.Count, e.Message);
        }
    }

    private async Task WriteAsync(List<AuditEvent> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return;
        }
        // Each hour's events as JSON lines, serialized straight to UTF-8 (no strings in between).
        var byHour = new Dictionary<string, (ArrayBufferWriter<byte> Lines, int Count)>(StringComparer.Ordinal);
        var hour = "";
        ArrayBufferWriter<byte>? lines = null;
        foreach (var e in batch)
        {
            var of = HourOf(e.Time);
            if (lines is null || of != hour)
            {
                hour = of;
                if (!byHour.TryGetValue(hour, out var entry))
                {
                    entry = (new ArrayBufferWriter<byte>(64 * 1024), 0);
                }
                lines = entry.Lines;
                byHour[hour] = entry;
            }
            using (var json = new Utf8JsonWriter(lines))
            {
                JsonSerializer.Serialize(json, e, AuditJson.Default.AuditEvent);
            }
            lines.Write("\n"u8);
            byHour[hour] = (lines, byHour[hour].Count + 1);
        }
        if (!string.IsNullOrEmpty(_options.File))
        {
            try
            {
                await using var file = new FileStream(_options.File, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
                foreach (var (_, (buffer, _)) in byHour)
                {
                    await file.WriteAsync(buffer.WrittenMemory, cancellationToken);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("audit log: cannot append to {File}: {Error}", _options.File, e.Message);
            }
        }
        foreach (var (of, (buffer, count)) in byHour)
        {
            var bytes = buffer.WrittenSpan.ToArray();
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await _grains.GetGrain<IAuditGrain>(of).Append(bytes);
                    _metrics.AuditStored.Add(count);
                    break;
                }
                catch (Exception e) when (e is not OperationCanceledException && attempt < 4)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250 << attempt), cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _metrics.AuditDropped.Add(count, new KeyValuePair<string, object?>("reason", "store_failed"));
                    _logger.LogWarning("audit log: could not store hour {Hour}'s batch in the cluster: {Error}", of, e.Message);
                    break;
                }
            }
        }
    }

    public static string HourOf(DateTimeOffset time) => time.UtcDateTime.ToString("yyyyMMddHH", CultureInfo.InvariantCulture);
}
