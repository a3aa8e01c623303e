using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>How often the coordinator looks, and how long a node may be Down before it is Removed.</summary>
public sealed record CoordinatorSettings(TimeSpan Interval, TimeSpan DownGrace);

/// <summary>
/// Changes the placement view as nodes come and go (docs/architecture.md "View changes and the coordinator"). Every
/// silo runs it; only the coordinator acts — the Active node with the smallest node id whose lease is live — so one
/// process decides at a time, and since every change is a compare-and-set that decides again on the freshest view, two
/// processes that both believe they coordinate (briefly, while leases run out) write the same thing. The decisions are
/// <see cref="Decide"/>; this part reads leases and reports, writes, logs, and watches this node's own state.
/// </summary>
public sealed partial class PlacementCoordinator(
    ICasStore store,
    PlacementViewStore views,
    TopologyFeed topology,
    TransitionReports reports,
    MembershipBackendHealth health,
    string clusterId,
    string nodeId,
    CoordinatorSettings settings,
    ILogger<PlacementCoordinator> logger,
    IHostApplicationLifetime? lifetime = null,
    TimeProvider? time = null,
    Action<PlacementView>? retire = null) : BackgroundService
{
    /// <summary>
    /// A running node renews its lease every third of its TTL, so its lease has at least two thirds left; with less
    /// than that minus a margin for a busy machine, it missed a renewal: a killed silo counts as late 1.5–6.5 s after
    /// the kill, but Down only 10–15 s after it.
    /// </summary>
    private static readonly TimeSpan LateBelow = NodeRegistration.LeaseTtl * 2 / 3 - TimeSpan.FromSeconds(1.5);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);
    private (long Epoch, IReadOnlyList<string> Gainers)? _gainers;
    private bool _sawSelfDraining;
    private bool _stopping;

    /// <summary>Whether this node coordinated at its last tick.</summary>
    public bool IsCoordinator { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            await TickAsync(stoppingToken);
            await Task.Delay(settings.Interval, stoppingToken);
        }
    }

    /// <summary>One look: read the view, act if this node coordinates, and watch this node's own state.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        try
        {
            var view = await views.ReadAsync(cancellationToken);
            topology.Publish(view);
            IsCoordinator = await IsCoordinatorAsync(view, cancellationToken);
            if (IsCoordinator)
            {
                await CoordinateAsync(view, cancellationToken);
            }
            if (health.MarkReachable(_time.GetUtcNow()) is { } outage)
            {
                logger.LogInformation("membership backend reachable again after {Seconds:0.0} s; placement view epoch {Epoch}", outage.TotalSeconds, topology.Current.Epoch);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (health.MarkUnreachable(_time.GetUtcNow(), e.Message))
            {
                logger.LogWarning(e, "membership backend unreachable: serving on placement view epoch {Epoch} and changing nothing until it answers again", topology.Current.Epoch);
            }
        }
        WatchSelf(topology.Current);
    }

    /// <summary>The Active nodes in id order: the first whose lease is live coordinates. Usually one read.</summary>
    private async Task<bool> IsCoordinatorAsync(PlacementView view, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        foreach (var node in view.Nodes.Where(n => n.State == NodeState.Active).OrderBy(n => n.NodeId, StringComparer.Ordinal))
        {
            if (await NodeLease.ReadExpiryAsync(store, clusterId, node.NodeId, cancellationToken) is { } expires && expires > now)
            {
                return node.NodeId == nodeId;
            }
        }
        return false;
    }

    private async Task CoordinateAsync(PlacementView view, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var live = new HashSet<string>(StringComparer.Ordinal);
        var late = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in view.Nodes.Where(n => n.State != NodeState.Removed))
        {
            if (await NodeLease.ReadExpiryAsync(store, clusterId, node.NodeId, cancellationToken) is { } expires && expires > now)
            {
                live.Add(node.NodeId);
                if (expires - now < LateBelow)
                {
                    late.Add(node.NodeId);
                }
            }
        }
        TransitionProgress? progress = null;
        if (view.InTransition)
        {
            if (_gainers is not { } cached || cached.Epoch != view.Epoch)
            {
                // 65,536 shards ranked twice: CPU work, done once per view epoch and off the caller's thread.
                var gainers = await Task.Run(() => Transitions.Gainers(view), cancellationToken);
                _gainers = cached = (view.Epoch, gainers);
            }
            var synced = new HashSet<string>(StringComparer.Ordinal);
            foreach (var gainer in cached.Gainers)
            {
                if (await reports.IsSyncedAsync(view.TransitionEpoch, gainer, cancellationToken))
                {
                    synced.Add(gainer);
                }
            }
            progress = new TransitionProgress(view.Epoch, cached.Gainers, synced);
        }
        var drained = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in view.Nodes.Where(n => n.State == NodeState.Draining))
        {
            if (await reports.IsDrainedAsync(node.NodeId, cancellationToken))
            {
                drained.Add(node.NodeId);
            }
        }

        var inputs = new CoordinatorInputs(now, live, settings.DownGrace, progress, drained, late);
        PlacementView? before = null;
        var after = await views.UpdateAsync(v => Decide(before = v, inputs), cancellationToken);
        if (before is not null && after.Epoch != before.Epoch)
        {
            topology.Publish(after);
            LogChanges(before, after);
        }
        if (after.InTransition && progress is not null && progress.ViewEpoch == after.Epoch)
        {
            LogWaiting(after, progress, live);
        }
    }

    private void LogChanges(PlacementView before, PlacementView after)
    {
        foreach (var node in after.Nodes)
        {
            if (before.Find(node.NodeId) is { } old && old.State != node.State)
            {
                logger.LogInformation("coordinator: node {NodeId} {From} → {To} (placement view epoch {Before} → {Epoch})", node.NodeId, old.State, node.State, before.Epoch, after.Epoch);
            }
        }
        if (after.InTransition && (!before.InTransition || before.TransitionEpoch != after.TransitionEpoch))
        {
            logger.LogInformation("coordinator: transition begins at epoch {Epoch}: owners move; nodes that gain shards sync them and report", after.Epoch);
        }
        else if (before.InTransition && !after.InTransition)
        {
            logger.LogInformation("coordinator: transition of epoch {TransitionEpoch} ends at epoch {Epoch}: every node that gained shards synced them", before.TransitionEpoch, after.Epoch);
        }
        var owning = after.Nodes.Count(RendezvousPlacement.Owns);
        if (owning < after.Replicas && before.Nodes.Count(RendezvousPlacement.Owns) >= after.Replicas)
        {
            logger.LogWarning("coordinator: only {Owning} nodes own data, fewer than R = {R}: shards have fewer copies until a node is added", owning, after.Replicas);
        }
    }

    /// <summary>Once per transition and gainer: who is awaited, and loudly a gainer that cannot report (down or gone).</summary>
    private void LogWaiting(PlacementView view, TransitionProgress progress, HashSet<string> live)
    {
        foreach (var gainer in progress.Waiting)
        {
            var state = view.Find(gainer)?.State;
            var stuck = state is NodeState.Down or NodeState.Removed or null || !live.Contains(gainer);
            if (!_reported.Add($"{view.TransitionEpoch}/{gainer}/{stuck}"))
            {
                continue;
            }
            if (stuck)
            {
                logger.LogWarning(
                    "coordinator: transition of epoch {TransitionEpoch} stays open: node {NodeId} gained shards but is {State} and cannot report them synced; it ends only once that node is back and has synced them",
                    view.TransitionEpoch, gainer, state?.ToString() ?? "gone");
            }
            else
            {
                logger.LogInformation("coordinator: transition of epoch {TransitionEpoch} waits for node {NodeId} to sync the shards it gained", view.TransitionEpoch, gainer);
            }
        }
    }

    /// <summary>
    /// A node that was draining and is now removed has handed everything over: it is retired (the <c>retire</c> callback
    /// records that first, so a restart does not rejoin) and it stops.
    /// </summary>
    private void WatchSelf(PlacementView view)
    {
        var state = view.Find(nodeId)?.State;
        if (state == NodeState.Draining)
        {
            _sawSelfDraining = true;
        }
        else if (state == NodeState.Removed && _sawSelfDraining && !_stopping)
        {
            _stopping = true;
            retire?.Invoke(view);
            logger.LogInformation("node {NodeId} is drained and Removed (placement view epoch {Epoch}): the drain is complete; stopping", nodeId, view.Epoch);
            lifetime?.StopApplication();
        }
    }
}
