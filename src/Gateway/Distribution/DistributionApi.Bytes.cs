using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Distribution;

// Where each handler's bytes go (DESIGN principles 3, 4 and 8): blobs whose digest is known up front to the digest's
// owners (a hinted copy in place of an owner known to be down), upload chunks to the owners pinned in the session
// at POST that still have every byte, reads to the nodes the repository's link names, then the digest's owners.
// Replication itself (fan-out, quorum, hints, resumed reads) lives in Bytes/ReplicaWriter and Bytes/ReplicaReader.
public sealed partial class DistributionApi
{
    /// <summary>Writes a blob whose digest is known to W or more of R targets; returns its size and the nodes holding it.</summary>
    private Task<(long Size, string[] Holders)> WriteToOwnersAsync(Digest digest, Stream content, long? expectedLength, CancellationToken ct) =>
        writer.WriteBlobAsync(digest, content, expectedLength, ct);

    /// <summary>The nodes holding an upload's bytes: pinned in the session (older sessions: computed from the id).</summary>
    private string[] UploadOwners(string uploadId, UploadState state)
    {
        var owners = state.Owners.Length > 0 ? state.Owners : [.. router.OwnersOfUpload(uploadId)];
        return owners.Length == 0 ? throw new RegistryException(ErrorCode.Unavailable, "no storage node is in the placement view") : owners;
    }

    /// <summary>
    /// Opens a blob from a node that has it: the link's holders, then the digest's owners. Null when no node has it;
    /// UNAVAILABLE when a node that might have it could not be asked.
    /// </summary>
    private Task<Stream?> OpenBlobAsync(Digest digest, long offset, long length, string[] holders, CancellationToken ct) =>
        reader.OpenAsync(digest, offset, length, holders, ct);
}
