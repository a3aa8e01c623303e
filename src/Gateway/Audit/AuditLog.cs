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
    [property: JsonPropertyName("gateway")] string? Gateway = null,
    [property: JsonPropertyName("count")] int? Count = null,
    [property: JsonPropertyName("until")] DateTimeOffset? Until = null);

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
    // Under 85 KB of references, so a batch's list stays off the large-object heap.
    private const int MaxBatch = 8000;

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

    private readonly PullTally _pulls = new();

    /// <summary>Queues an event; returns at once.</summary>
    public void Record(AuditEvent e)
    {
        if (!_options.Enabled)
        {
            return;
        }
        if (PullTally.Counts(e))
        {
            if (!_pulls.Add(e, _gateway, _options.QueueCapacity))
            {
                _metrics.AuditDropped.Add(1, new KeyValuePair<string, object?>("reason", "queue_full"));
            }
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
            await WriteAsync(_pulls.Drain(), cancellationToken);
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
        // One batch a second, not one per request: events wait in the queue (pulls in their tally) until the tick.
        using var tick = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await tick.WaitForNextTickAsync(stoppingToken))
            {
                if (_queue.Reader.Count > 0 || !_pulls.IsEmpty)
                {
                    await FlushAsync(stoppingToken);
                }
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

/// <summary>
/// Successful manifest pulls waiting for the next write, counted by everything but their time: who, from where, what,
/// the answer, the hour. A fleet's nodes polling a tag, or a client pulling in a loop, becomes one event per second
/// with <see cref="AuditEvent.Count"/> and <see cref="AuditEvent.Until"/> (the last one's time), not a record per
/// request held, written and replicated — which had cut a gateway's manifest-GET throughput to 0.65× and put a 10 ms
/// tail on its answers through the garbage collector (the events lived a second, long enough to be promoted).
/// </summary>
public sealed class PullTally
{
    private readonly Lock _lock = new();
    private Dictionary<Key, Entry> _entries = [];

    /// <summary>Whether an event is a pull this tally counts (failures are recorded one by one, as they came).</summary>
    public static bool Counts(AuditEvent e) => e.Status < 400 && e.Action == "manifest.pull";

    public bool IsEmpty
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count == 0;
            }
        }
    }

    /// <summary>Counts a pull; false when <paramref name="capacity"/> different pulls already wait (it is dropped).</summary>
    public bool Add(AuditEvent e, string gateway, int capacity)
    {
        var key = new Key(e.Identity, e.Address, e.Repository, e.Reference, e.Digest, e.Status, e.Time.UtcTicks / TimeSpan.TicksPerHour);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var entry))
            {
                entry.Count++;
                entry.Last = e.Time;
                return true;
            }
            if (_entries.Count >= capacity)
            {
                return false;
            }
            _entries[key] = new Entry(e with { Gateway = gateway }) { Last = e.Time };
            return true;
        }
    }

    /// <summary>The pulls counted so far, one event per kind in the order first seen; the tally starts again empty.</summary>
    public List<AuditEvent> Drain()
    {
        Dictionary<Key, Entry> taken;
        lock (_lock)
        {
            if (_entries.Count == 0)
            {
                return [];
            }
            taken = _entries;
            _entries = [];
        }
        var events = new List<AuditEvent>(taken.Count);
        foreach (var entry in taken.Values)
        {
            events.Add(entry.Count == 1 ? entry.First : entry.First with { Count = entry.Count, Until = entry.Last });
        }
        events.Sort((a, b) => a.Time.CompareTo(b.Time));
        return events;
    }

    private readonly record struct Key(string Identity, string Address, string? Repository, string? Reference, string? Digest, int Status, long Hour);

    private sealed class Entry(AuditEvent first)
    {
        public AuditEvent First { get; } = first;
        public int Count { get; set; } = 1;
        public DateTimeOffset Last { get; set; }
    }
}
