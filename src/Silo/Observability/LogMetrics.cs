using System.Diagnostics.Metrics;

namespace Wharf.Silo.Observability;

/// <summary>
/// The replicated record logs led from this node (DESIGN principle 5): appends by outcome and their latency,
/// recoveries (grain activations) by outcome, leaders deposed by a newer ballot, owners caught up, heartbeats.
/// </summary>
public sealed class LogMetrics : IDisposable
{
    public const string MeterName = "Wharf.Replication";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _appends;
    private readonly Histogram<double> _appendDuration;
    private readonly Counter<long> _recoveries;
    private readonly Counter<long> _deposed;
    private readonly Counter<long> _catchUps;
    private readonly Counter<long> _heartbeats;

    public LogMetrics()
    {
        _appends = _meter.CreateCounter<long>("wharf.log.appends", description: "Batches appended to replicated logs led from this node, by outcome (acknowledged: W owners accepted; unavailable: fewer did).");
        _appendDuration = _meter.CreateHistogram<double>("wharf.log.append.duration", "s", "Time from sending a batch to W owners' acceptance.");
        _recoveries = _meter.CreateCounter<long>("wharf.log.recoveries", description: "Leader recoveries (grain activations) on this node, by outcome.");
        _deposed = _meter.CreateCounter<long>("wharf.log.deposed", description: "Leaders on this node that found an owner promised a newer ballot, and stepped down.");
        _catchUps = _meter.CreateCounter<long>("wharf.log.catchup.entries", description: "Entries sent to owners that lagged behind a leader on this node.");
        _heartbeats = _meter.CreateCounter<long>("wharf.log.heartbeats", description: "Read-lease renewals (an Accept with no entries) sent by leaders on this node.");
    }

    public void Append(bool acknowledged, TimeSpan duration)
    {
        var outcome = new KeyValuePair<string, object?>("outcome", acknowledged ? "acknowledged" : "unavailable");
        _appends.Add(1, outcome);
        if (acknowledged)
        {
            _appendDuration.Record(duration.TotalSeconds);
        }
    }

    public void Recovery(bool ok) => _recoveries.Add(1, new KeyValuePair<string, object?>("outcome", ok ? "ok" : "unavailable"));

    public void Deposed() => _deposed.Add(1);

    public void CaughtUp(int entries) => _catchUps.Add(entries);

    public void Heartbeat() => _heartbeats.Add(1);

    public void Dispose() => _meter.Dispose();
}
