using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>An operator's edit of the view: the view to write, or why not (an HTTP status, a code, a sentence).</summary>
public sealed record ViewEdit(PlacementView? View, int Status, string Error = "", string Message = "")
{
    public bool Accepted => View is not null;

    public static ViewEdit Ok(PlacementView view, string message) => new(view, 200, "", message);

    public static ViewEdit Refuse(int status, string error, string message) => new(null, status, error, message);
}

/// <summary>
/// The admin API's edits of the placement view (docs/architecture.md "View changes and the coordinator"), pure so
/// that they can run inside compare-and-set on the freshest view and be tested alone. An edit that changes owners
/// starts a transition, so it is refused while another one is in progress.
/// </summary>
public static class ViewEdits
{
    public const string UnknownNode = "UNKNOWN_NODE";
    public const string TransitionInProgress = "TRANSITION_IN_PROGRESS";
    public const string NodeNotActive = "NODE_NOT_ACTIVE";
    public const string TooFewOwners = "TOO_FEW_OWNERS";
    public const string NodeAlive = "NODE_ALIVE";
    public const string NodeRemoved = "NODE_REMOVED";
    public const string InvalidReplication = "INVALID_REPLICATION";

    private static ViewEdit Busy(PlacementView view) => ViewEdit.Refuse(409, TransitionInProgress,
        $"owners are moving (transition begun at epoch {view.TransitionEpoch}, view epoch {view.Epoch}); try again once it has ended (wharf status)");

    /// <summary>Draining: the node keeps serving but owns nothing; its shards move to the others, then it is removed.</summary>
    public static ViewEdit Drain(PlacementView view, string nodeId)
    {
        if (view.Find(nodeId) is not { } node)
        {
            return ViewEdit.Refuse(404, UnknownNode, $"no node {nodeId} in the placement view (epoch {view.Epoch})");
        }
        if (node.State == NodeState.Draining)
        {
            return ViewEdit.Ok(view, $"node {nodeId} is already Draining");
        }
        if (view.InTransition)
        {
            return Busy(view);
        }
        if (node.State != NodeState.Active)
        {
            return ViewEdit.Refuse(409, NodeNotActive, $"node {nodeId} is {node.State}: only an Active node can be drained (a dead one is forgotten: wharf node forget {nodeId})");
        }
        var owning = view.Nodes.Count(RendezvousPlacement.Owns);
        if (owning - 1 < view.Replicas)
        {
            return ViewEdit.Refuse(409, TooFewOwners,
                $"draining {nodeId} would leave {owning - 1} nodes owning data, fewer than R = {view.Replicas}: add a node first, or lower R (wharf replication set)");
        }
        return ViewEdit.Ok(PlacementCoordinator.StartTransition(view, node with { State = NodeState.Draining }),
            $"node {nodeId} is Draining: its shards move to other owners, then it is removed and stops");
    }

    /// <summary>
    /// A node dead for good: Removed at once, without waiting for the grace. Refused while it runs (its lease is
    /// live): a running node is drained, or stopped first.
    /// </summary>
    public static ViewEdit Forget(PlacementView view, string nodeId, bool leaseLive)
    {
        if (view.Find(nodeId) is not { } node)
        {
            return ViewEdit.Refuse(404, UnknownNode, $"no node {nodeId} in the placement view (epoch {view.Epoch})");
        }
        if (node.State == NodeState.Removed)
        {
            return ViewEdit.Refuse(409, NodeRemoved, $"node {nodeId} is already Removed");
        }
        if (leaseLive && node.State != NodeState.Down)
        {
            return ViewEdit.Refuse(409, NodeAlive, node.State == NodeState.Active
                ? $"node {nodeId} is Active and running (its lease is live): drain it instead (wharf node drain {nodeId})"
                : $"node {nodeId} is {node.State} and running (its lease is live): stop it first");
        }
        var removed = node with { State = NodeState.Removed };
        if (!RendezvousPlacement.Owns(node))
        {
            // Joining and Draining nodes own nothing: removing one moves no shard.
            return ViewEdit.Ok(view with { Nodes = [.. view.Nodes.Select(n => n.NodeId == nodeId ? removed : n)] }, $"node {nodeId} is Removed");
        }
        if (view.InTransition)
        {
            return Busy(view);
        }
        return ViewEdit.Ok(PlacementCoordinator.StartTransition(view, removed),
            $"node {nodeId} is Removed: its shards move to other owners, which copy them from the remaining replicas");
    }

    /// <summary>R and W for the whole cluster (DESIGN "Configuration"). A new R moves shards, so it starts a transition.</summary>
    public static ViewEdit SetReplication(PlacementView view, int replicas, int writeQuorum)
    {
        if (replicas < 1 || writeQuorum < 1 || writeQuorum > replicas || 2 * writeQuorum <= replicas)
        {
            return ViewEdit.Refuse(400, InvalidReplication,
                $"R = {replicas}, W = {writeQuorum}: need 1 <= W <= R and W more than half of R (two write quorums must share an owner)");
        }
        var owning = view.Nodes.Count(RendezvousPlacement.Owns);
        if (replicas > owning)
        {
            return ViewEdit.Refuse(409, TooFewOwners, $"R = {replicas} needs at least {replicas} nodes owning data; the view has {owning}");
        }
        if (view.Replicas == replicas && view.WriteQuorum == writeQuorum)
        {
            return ViewEdit.Ok(view, $"R = {replicas}, W = {writeQuorum} already");
        }
        if (view.InTransition)
        {
            return Busy(view);
        }
        var next = view with { Replicas = replicas, WriteQuorum = writeQuorum };
        return view.Replicas == replicas
            ? ViewEdit.Ok(next, $"W = {writeQuorum} (R = {replicas} unchanged)")
            : ViewEdit.Ok(PlacementCoordinator.StartTransition(view, next), $"R = {replicas}, W = {writeQuorum}: shards move to their new owners");
    }
}
