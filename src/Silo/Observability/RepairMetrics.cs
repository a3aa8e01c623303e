using System.Diagnostics.Metrics;

namespace Wharf.Silo.Observability;

/// <summary>
/// Repair on this node (docs/architecture.md, "Repair"): what it holds, what is not yet on every owner, what repair
/// copied and handed off, and when the last pass ended. Gauges show the last completed pass.
/// </summary>
public sealed class RepairMetrics : IDisposable
{
    public const string MeterName = "Wharf.Repair";

    private readonly Meter _meter = new(MeterName);
    private volatile Repair.RepairPass? _last;

    public RepairMetrics()
    {
        Copied = _meter.CreateCounter<long>("wharf.repair.copies", description: "Keys repair copied: kind=log (entries pulled from another owner), blob (pulled from another owner), handoff (pushed to an owner).");
        BytesMoved = _meter.CreateCounter<long>("wharf.repair.moved", "By", "Blob bytes repair copied between nodes (pulled here or pushed from here).");
        RecordsFixed = _meter.CreateCounter<long>("wharf.repair.records_fixed", description: "Records rewritten because they differed from what their log's entries say.");
        Dropped = _meter.CreateCounter<long>("wharf.repair.dropped", description: "Blob copies removed from this node after every owner confirmed a verified copy.");
        _meter.CreateObservableGauge("wharf.repair.keys", () => Gauge(p => (p.LogsHeld, p.BlobsHeld)), description: "Keys this node holds: kind=log (replicated logs), blob.");
        _meter.CreateObservableGauge("wharf.repair.held", () => _last?.BytesHeld ?? 0, "By", "Blob bytes this node holds.");
        _meter.CreateObservableGauge("wharf.repair.under_replicated", () => Gauge(p => (p.LogsUnderReplicated, p.BlobsUnderReplicated)), description: "Keys this node owns that not every owner was seen to hold in the last pass (an unreachable owner counts as lacking).");
        _meter.CreateObservableGauge("wharf.repair.hints_pending", () => _last?.HintsPending ?? 0, description: "Blob copies on this node whose shard it does not own, not yet on every owner (hinted copies waiting to go home).");
        _meter.CreateObservableGauge("wharf.repair.queue", () => _last?.Queue ?? 0, description: "Copies found missing in the last pass that could not be made yet.");
        _meter.CreateObservableGauge("wharf.repair.last_pass.completed", () => _last?.Completed.ToUnixTimeSeconds() ?? 0, "s", "Unix time at which the last repair pass ended (0: none yet).");
    }

    public Counter<long> Copied { get; }

    public Counter<long> BytesMoved { get; }

    public Counter<long> RecordsFixed { get; }

    public Counter<long> Dropped { get; }

    public void PassCompleted(Repair.RepairPass pass) => _last = pass;

    private IEnumerable<Measurement<long>> Gauge(Func<Repair.RepairPass, (long Log, long Blob)> pick)
    {
        var (log, blob) = _last is { } p ? pick(p) : (0, 0);
        yield return new Measurement<long>(log, new KeyValuePair<string, object?>("kind", "log"));
        yield return new Measurement<long>(blob, new KeyValuePair<string, object?>("kind", "blob"));
    }

    public void Dispose() => _meter.Dispose();
}
