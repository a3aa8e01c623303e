using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>
/// What a silo declares about itself in the placement view. <paramref name="Replicas"/> and
/// <paramref name="WriteQuorum"/> (R and W) are taken only by the node that forms the cluster: after that they are
/// the cluster's, kept in the view, and a node configured otherwise follows the view and says so.
/// </summary>
public sealed record NodeAnnouncement(string NodeId, string Zone, double Weight, string ByteEndpoint, string SiloEndpoint, int BootstrapExpect, int Replicas = 1, int WriteQuorum = 1, string BulkEndpoint = "");

/// <summary>
/// A silo's place in the cluster: it takes its node-id lease (refusing to start if another live process holds the
/// id), enters the placement view by compare-and-set, and renews the lease while it runs.
/// A node that is new to the view joins as Active while the cluster is forming (fewer than BootstrapExpect nodes
/// own data), and as Joining afterwards: it then owns nothing until repair hands it its share, so adding a silo
/// never hides data that lives elsewhere. A known node keeps its state and shards across restarts.
/// </summary>
public sealed class NodeRegistration(
    ICasStore store,
    PlacementViewStore views,
    TopologyFeed topology,
    NodeAnnouncement self,
    string clusterId,
    ILogger<NodeRegistration> logger) : BackgroundService
{
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(15);

    private readonly NodeLease _lease = new(store, clusterId, self.NodeId, LeaseTtl);

    /// <summary>Runs before the silo starts: lease first, then the view.</summary>
    public async Task JoinAsync(CancellationToken cancellationToken)
    {
        await _lease.AcquireAsync(cancellationToken);
        var wasRemoved = false;
        var view = await views.UpdateAsync(v =>
        {
            wasRemoved = v.Find(self.NodeId)?.State == NodeState.Removed;
            return Join(v, self);
        }, cancellationToken);
        topology.Publish(view);
        if (wasRemoved)
        {
            // A drain that ended before: the report must not remove this node when it is drained again later.
            await new TransitionReports(store, clusterId).ClearDrainedAsync(self.NodeId, cancellationToken);
        }
        var me = view.Find(self.NodeId)!;
        logger.LogInformation("node {NodeId} is {State} in placement view epoch {Epoch} ({Count} nodes, R = {R}, W = {W})", self.NodeId, me.State, view.Epoch, view.Nodes.Count, view.Replicas, view.WriteQuorum);
        if (view.Replicas != self.Replicas || view.WriteQuorum != self.WriteQuorum)
        {
            logger.LogWarning(
                "Wharf:Replication here says R = {ConfiguredR}, W = {ConfiguredW}; the cluster's view says R = {R}, W = {W}, which this node follows (change them through the admin API)",
                self.Replicas, self.WriteQuorum, view.Replicas, view.WriteQuorum);
        }
    }

    /// <summary>
    /// The view with this node in it. A known node keeps its state (a restart moves nothing), except that a Down one is
    /// Active again, and a Removed one comes back like a new node: its data was handed over, so it owns nothing until
    /// the coordinator promotes it.
    /// </summary>
    public static PlacementView? Join(PlacementView view, NodeAnnouncement self)
    {
        var existing = view.Find(self.NodeId);
        if (existing is not null)
        {
            var state = existing.State switch
            {
                NodeState.Down => NodeState.Active,
                NodeState.Removed => view.Nodes.Count(RendezvousPlacement.Owns) < self.BootstrapExpect ? NodeState.Active : NodeState.Joining,
                _ => existing.State,
            };
            var updated = existing with
            {
                State = state,
                ByteEndpoint = self.ByteEndpoint,
                SiloEndpoint = self.SiloEndpoint,
                BulkEndpoint = self.BulkEndpoint,
                Zone = self.Zone,
                Weight = self.Weight,
                DownSince = null,
            };
            return updated == existing ? null : view with { Nodes = [.. view.Nodes.Select(n => n.NodeId == self.NodeId ? updated : n)] };
        }
        if (view.Nodes.Count == 0)
        {
            // The node that forms the cluster sets its R and W.
            view = view with { Replicas = self.Replicas, WriteQuorum = self.WriteQuorum };
        }
        var owning = view.Nodes.Count(RendezvousPlacement.Owns);
        var joinState = owning < self.BootstrapExpect ? NodeState.Active : NodeState.Joining;
        var node = new PlacementNode(self.NodeId, joinState, self.Zone, self.Weight, self.ByteEndpoint, null, self.SiloEndpoint, self.BulkEndpoint);
        return view with { Nodes = [.. view.Nodes, node] };
    }

    /// <summary>
    /// The view's epoch when <paramref name="nodeId"/> is Removed and its drained report is still there — a drain removed
    /// it, even if its process never saw that (it stopped between reporting drained and the coordinator's removal) —
    /// else null. Only reads: a retired node must not change the view.
    /// </summary>
    public static async Task<long?> RemovedByDrainAsync(ICasStore store, PlacementViewStore views, string clusterId, string nodeId, CancellationToken cancellationToken)
    {
        var view = await views.ReadAsync(cancellationToken);
        return view.Find(nodeId)?.State == NodeState.Removed && await new TransitionReports(store, clusterId).IsDrainedAsync(nodeId, cancellationToken)
            ? view.Epoch
            : null;
    }

    /// <summary>This node back to Active when the view says Down (a paused process resumed, or the backend was away).</summary>
    public static PlacementView? Reactivate(PlacementView view, string nodeId) =>
        view.Find(nodeId) is { State: NodeState.Down } me
            ? view with { Nodes = [.. view.Nodes.Select(n => n.NodeId == nodeId ? me with { State = NodeState.Active, DownSince = null } : n)] }
            : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(LeaseTtl / 3, stoppingToken);
            try
            {
                await _lease.AcquireAsync(stoppingToken);
                if (topology.Current.Find(self.NodeId)?.State == NodeState.Down)
                {
                    var view = await views.UpdateAsync(v => Reactivate(v, self.NodeId), stoppingToken);
                    topology.Publish(view);
                    logger.LogInformation("node {NodeId} was marked Down and runs: Active again in placement view epoch {Epoch}", self.NodeId, view.Epoch);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "could not renew the lease of node {NodeId}", self.NodeId);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await _lease.ReleaseAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "could not release the lease of node {NodeId}", self.NodeId);
        }
    }
}
