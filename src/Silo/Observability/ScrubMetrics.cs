using System.Diagnostics.Metrics;

namespace Wharf.Silo.Observability;

/// <summary>
/// The blob scrubber's progress on this node (docs/architecture.md, "Scrubbing"): blobs and bytes re-hashed,
/// copies found corrupt and what became of them, and when the last full pass ended.
/// </summary>
public sealed class ScrubMetrics : IDisposable
{
    public const string MeterName = "Wharf.Scrub";

    private readonly Meter _meter = new(MeterName);
    private long _lastPassCompleted;

    public ScrubMetrics()
    {
        Checked = _meter.CreateCounter<long>("wharf.scrub.checked", description: "Blobs on this node re-hashed against their digest by the scrubber.");
        Bytes = _meter.CreateCounter<long>("wharf.scrub.bytes", "By", "Blob bytes re-hashed by the scrubber.");
        Corrupt = _meter.CreateCounter<long>("wharf.scrub.corrupt", description: "Blob copies on this node whose bytes did not hash to their digest (or could not be read).");
        Repaired = _meter.CreateCounter<long>("wharf.scrub.repaired", description: "Corrupt copies replaced by verified bytes fetched from another node.");
        Unrepaired = _meter.CreateCounter<long>("wharf.scrub.unrepaired", description: "Corrupt copies no other node could supply: moved to corrupt/ and no longer served from this node.");
        _meter.CreateObservableGauge("wharf.scrub.last_pass.completed", () => Interlocked.Read(ref _lastPassCompleted), "s", "Unix time at which the scrubber last finished a full pass over this node's blobs (0: none yet).");
    }

    public Counter<long> Checked { get; }

    public Counter<long> Bytes { get; }

    public Counter<long> Corrupt { get; }

    public Counter<long> Repaired { get; }

    public Counter<long> Unrepaired { get; }

    public void PassCompleted(DateTimeOffset at) => Interlocked.Exchange(ref _lastPassCompleted, at.ToUnixTimeSeconds());

    public void Dispose() => _meter.Dispose();
}
