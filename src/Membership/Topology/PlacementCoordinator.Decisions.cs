using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>What the coordinator knows at one tick besides the view: the clock, whose leases are live, reports.</summary>
/// <param name="LiveLeases">Node ids whose lease has not run out; every other node counts as not running.</param>
/// <param name="Progress">The transition's gainers and who of them reported synced (null: not read).</param>
/// <param name="Drained">Draining nodes that reported holding nothing any more.</param>
/// <param name="LateLeases">
/// Nodes whose lease is live but missed a renewal: perhaps dead, not yet expired. No owners move while one owns data.
/// </param>
public sealed record CoordinatorInputs(
    DateTimeOffset Now,
    IReadOnlySet<string> LiveLeases,
    TimeSpan DownGrace,
    TransitionProgress? Progress = null,
    IReadOnlySet<string>? Drained = null,
    IReadOnlySet<string>? LateLeases = null);

/// <summary>
/// The nodes that gained shards in the transition of the view at <paramref name="ViewEpoch"/>, and which of them
/// reported them synced. Only valid for that epoch: a newer view may have other gainers.
/// </summary>
public sealed record TransitionProgress(long ViewEpoch, IReadOnlyList<string> Gainers, IReadOnlySet<string> Synced)
{
    public IEnumerable<string> Waiting => Gainers.Where(g => !Synced.Contains(g));
}

/// <summary>
/// The coordinator's decisions as one pure function of the view and what it knows (docs/architecture.md "View changes
/// and the coordinator"). Rules, in order:
/// <list type="number">
/// <item>An Active node whose lease ran out is Down (DownSince = now); a Down node whose lease is live again is Active.
/// Neither moves shards (Down still owns), so both happen during a transition too.</item>
/// <item>In a transition: it ends (Previous = null) once every gainer reported synced. Nothing else changes owners.</item>
/// <item>Outside one: drained Draining nodes are Removed (they own nothing, so nothing moves); then at most one
/// ownership change, which starts a transition: the node Down longest past the grace is Removed, or else — when no
/// node is Down or late renewing its lease, since such a previous owner could not hand its shards over — one running
/// Joining node is Active.</item>
/// </list>
/// </summary>
public sealed partial class PlacementCoordinator
{
    /// <summary>The view the coordinator writes next, or null to leave it alone.</summary>
    public static PlacementView? Decide(PlacementView view, CoordinatorInputs inputs)
    {
        var nodes = view.Nodes.Select(n => n.State switch
        {
            NodeState.Active when !inputs.LiveLeases.Contains(n.NodeId) => n with { State = NodeState.Down, DownSince = inputs.Now },
            NodeState.Down when inputs.LiveLeases.Contains(n.NodeId) => n with { State = NodeState.Active, DownSince = null },
            _ => n,
        }).ToList();
        var next = view with { Nodes = nodes };

        if (next.InTransition)
        {
            if (inputs.Progress is { } progress && progress.ViewEpoch == view.Epoch)
            {
                if (!progress.Waiting.Any())
                {
                    next = next with { Previous = null, PreviousReplicas = 0 };
                }
                else if (next.Nodes
                    .Where(n => progress.Waiting.Contains(n.NodeId) && n.State == NodeState.Down && n.DownSince is { } since && inputs.Now - since >= inputs.DownGrace)
                    .OrderBy(n => n.DownSince).FirstOrDefault() is { } dead)
                {
                    // A gainer that died before it synced holds nothing the others need: it is removed and the
                    // transition starts again from the same previous owners (who hold every acknowledged write, since
                    // writes meanwhile needed W of them too), with the gainers of the new owners.
                    next = next with
                    {
                        Nodes = [.. next.Nodes.Select(n => n.NodeId == dead.NodeId ? n with { State = NodeState.Removed } : n)],
                        TransitionEpoch = view.Epoch + 1,
                    };
                }
            }
            return Changed(view, next);
        }

        if (inputs.Drained is { Count: > 0 } drained)
        {
            next = next with
            {
                Nodes = [.. next.Nodes.Select(n => n.State == NodeState.Draining && drained.Contains(n.NodeId) ? n with { State = NodeState.Removed } : n)],
            };
        }

        var expired = next.Nodes
            .Where(n => n.State == NodeState.Down && n.DownSince is { } since && inputs.Now - since >= inputs.DownGrace)
            .OrderBy(n => n.DownSince)
            .ThenBy(n => n.NodeId, StringComparer.Ordinal)
            .FirstOrDefault();
        if (expired is not null)
        {
            return Changed(view, StartTransition(next, expired with { State = NodeState.Removed }));
        }
        if (!next.Nodes.Any(n => n.State == NodeState.Down || (n.State == NodeState.Active && inputs.LateLeases?.Contains(n.NodeId) == true))
            && next.Nodes.Where(n => n.State == NodeState.Joining && inputs.LiveLeases.Contains(n.NodeId)).MinBy(n => n.NodeId, StringComparer.Ordinal) is { } joining)
        {
            return Changed(view, StartTransition(next, joining with { State = NodeState.Active }));
        }
        return Changed(view, next);
    }

    /// <summary>
    /// <paramref name="view"/> with <paramref name="changed"/> in place of the node of the same id, as a transition:
    /// Previous = the nodes before, TransitionEpoch = the epoch compare-and-set gives the new view.
    /// </summary>
    public static PlacementView StartTransition(PlacementView view, PlacementNode changed) =>
        StartTransition(view, view with { Nodes = [.. view.Nodes.Select(n => n.NodeId == changed.NodeId ? changed : n)] });

    /// <summary><paramref name="after"/> as a transition from <paramref name="before"/>.</summary>
    public static PlacementView StartTransition(PlacementView before, PlacementView after) =>
        after with { Previous = before.Nodes, TransitionEpoch = before.Epoch + 1, PreviousReplicas = before.Replicas };

    private static PlacementView? Changed(PlacementView before, PlacementView after) => after.SameContent(before) ? null : after;
}
