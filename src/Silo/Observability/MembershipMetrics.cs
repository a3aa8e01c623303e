using System.Diagnostics.Metrics;
using Wharf.Membership.Topology;

namespace Wharf.Silo.Observability;

/// <summary>
/// The placement view as this silo sees it (docs/architecture.md "View changes and the coordinator"): whether the
/// membership backend answers, whether owners are moving (the epoch and node states are wharf_placement_view_*), and whether this silo coordinates.
/// </summary>
public sealed class MembershipMetrics : IDisposable
{
    public const string MeterName = "Wharf.Membership";

    private readonly Meter _meter = new(MeterName);

    public MembershipMetrics(MembershipBackendHealth health, TopologyFeed topology, PlacementCoordinator coordinator)
    {
        _meter.CreateObservableGauge("wharf.membership.backend_up", () => health.IsUp ? 1 : 0, description: "1 when the membership backend answered this silo's last look (every Wharf:Cluster:CoordinatorInterval); 0 while it serves on the last view it saw.");
        _meter.CreateObservableGauge("wharf.placement.in_transition", () => topology.Current.InTransition ? 1 : 0, description: "1 while owners move: a transition began and not every node that gained shards has synced them.");
        _meter.CreateObservableGauge("wharf.placement.coordinator", () => coordinator.IsCoordinator ? 1 : 0, description: "1 on the silo that coordinates the placement view.");
    }

    public void Dispose() => _meter.Dispose();
}
