using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;

namespace Wharf.Contracts.Bytes;

/// <summary>
/// Where bytes go and come from (DESIGN principles 3 and 8): the owners of a key over the current placement view,
/// and the byte service of a node. The all-in-one and the cluster use the same router; only the transport to a
/// node differs (in-process for the local node, gRPC for the others).
/// </summary>
public interface IByteRouter
{
    /// <summary>The nodes that should hold a blob with this digest (the first R of its shard's ranking), best first.</summary>
    IReadOnlyList<string> OwnersOfDigest(Digest digest);

    /// <summary>
    /// Every node of the view that can take new bytes (state active), in the digest's shard ranking, best first:
    /// where a hinted copy goes when an owner is down, and where a read looks after the owners.
    /// </summary>
    IReadOnlyList<string> RankingOfDigest(Digest digest);

    /// <summary>The nodes an upload's bytes are pinned to at POST, best first.</summary>
    IReadOnlyList<string> OwnersOfUpload(string uploadId);

    /// <summary>W: how many nodes must hold a write durably before it is acknowledged (from the placement view).</summary>
    int WriteQuorum { get; }

    /// <summary>R: how many nodes should hold each key (from the placement view).</summary>
    int Replicas { get; }

    /// <summary>A node's state in the placement view; null when the view does not name it.</summary>
    NodeState? StateOf(string nodeId);

    /// <summary>The byte service of a node; throws <see cref="RegistryException"/> UNAVAILABLE when it is unknown.</summary>
    IByteService Node(string nodeId);
}
