namespace Wharf.Contracts.Placement;

public enum NodeState
{
    Active = 0,
    Down = 1,
    Draining = 2,
    Removed = 3,

    /// <summary>New to a cluster that already holds data: owns nothing until repair hands it its share.</summary>
    Joining = 4,
}

/// <summary>
/// One node of the placement view, identified by its persistent node id (never by SiloAddress). <see cref="ByteEndpoint"/>
/// is its gRPC byte service; <see cref="BulkEndpoint"/> the HTTP/1.1 bulk path beside it (<c>BulkBytes</c>), empty on a
/// node that does not serve one (gateways then move its bytes over gRPC).
/// </summary>
[GenerateSerializer, Immutable, Alias("wharf.placement-node.v1")]
public sealed record PlacementNode(
    [property: Id(0)] string NodeId,
    [property: Id(1)] NodeState State,
    [property: Id(2)] string Zone,
    [property: Id(3)] double Weight,
    [property: Id(4)] string ByteEndpoint,
    [property: Id(5)] DateTimeOffset? DownSince = null,
    [property: Id(6)] string SiloEndpoint = "",
    [property: Id(7)] string BulkEndpoint = "");

/// <summary>
/// Who owns data (DESIGN principle 3): the nodes with their state, zone and weight, versioned by an epoch that
/// only the membership backend's compare-and-set advances. Liveness says who answers now; this says who owns.
/// </summary>
/// <param name="Previous">
/// While owners move (docs/architecture.md "View changes"): the nodes as they were before the change that started the
/// transition. Logs are then written to a quorum of the old owners and a quorum of the new (joint quorums) until every
/// node that gained shards has synced them; the coordinator then ends the transition (Previous back to null).
/// </param>
/// <param name="TransitionEpoch">The epoch at which the current (or last) transition began.</param>
/// <param name="PreviousReplicas">R before the transition, when it changed R (0: the same as now).</param>
[GenerateSerializer, Immutable, Alias("wharf.placement-view.v1")]
public sealed record PlacementView(
    [property: Id(0)] long Epoch,
    [property: Id(1)] IReadOnlyList<PlacementNode> Nodes,
    [property: Id(2)] int Replicas = 1,
    [property: Id(3)] int WriteQuorum = 1,
    [property: Id(4)] IReadOnlyList<PlacementNode>? Previous = null,
    [property: Id(5)] long TransitionEpoch = 0,
    [property: Id(6)] int PreviousReplicas = 0)
{
    public static readonly PlacementView Empty = new(0, []);

    public PlacementNode? Find(string nodeId) => Nodes.FirstOrDefault(n => n.NodeId == nodeId);

    /// <summary>Whether owners are moving: a transition began and not every node that gained shards has synced them.</summary>
    public bool InTransition => Previous is not null;

    /// <summary>The view before the transition (its nodes and R), or null when none is in progress.</summary>
    public PlacementView? PreviousView => Previous is null ? null : this with
    {
        Nodes = Previous,
        Previous = null,
        Replicas = PreviousReplicas > 0 ? PreviousReplicas : Replicas,
        PreviousReplicas = 0,
    };

    /// <summary>Same nodes, states, R, W and transition: what compare-and-set must not write again.</summary>
    public bool SameContent(PlacementView other) =>
        Nodes.SequenceEqual(other.Nodes) && Replicas == other.Replicas && WriteQuorum == other.WriteQuorum
        && TransitionEpoch == other.TransitionEpoch && PreviousReplicas == other.PreviousReplicas
        && (Previous is null ? other.Previous is null : other.Previous is not null && Previous.SequenceEqual(other.Previous));
}
