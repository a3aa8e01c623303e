using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Bytes;

/// <summary>
/// Where bytes go and come from (DESIGN principles 3 and 8): the owners of a key over the current placement view,
/// and the byte service of a node. The all-in-one and the cluster use the same router; only the transport to a
/// node differs (in-process for the local node, gRPC for the others).
/// </summary>
public interface IByteRouter
{
    /// <summary>The nodes that should hold a blob with this digest, best first.</summary>
    IReadOnlyList<string> OwnersOfDigest(Digest digest);

    /// <summary>The nodes an upload's bytes are pinned to at POST, best first.</summary>
    IReadOnlyList<string> OwnersOfUpload(string uploadId);

    /// <summary>The byte service of a node; throws <see cref="RegistryException"/> UNAVAILABLE when it is unknown.</summary>
    IByteService Node(string nodeId);
}
