using Wharf.Contracts.Bytes;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Distribution;

// Where each handler's bytes go (DESIGN principles 3, 4 and 8), through the router: blobs whose digest is known up
// front to the digest's owners, upload chunks to the owners pinned in the session at POST, reads to the nodes the
// repository's link names, then the digest's owners.
public sealed partial class DistributionApi
{
    /// <summary>Writes a blob whose digest is known to its owner; returns its size and the nodes now holding it.</summary>
    private async Task<(long Size, string[] Holders)> WriteToOwnersAsync(Digest digest, Stream content, long? expectedLength, CancellationToken ct)
    {
        var owners = router.OwnersOfDigest(digest);
        if (owners.Count == 0)
        {
            throw new RegistryException(ErrorCode.Unavailable, "no storage node is in the placement view");
        }
        // R = 1 until replication lands: the first owner takes the write, and is the one holder.
        var size = await router.Node(owners[0]).WriteBlobAsync(digest, content, expectedLength, ct);
        return (size, [owners[0]]);
    }

    /// <summary>The node holding an upload's bytes: pinned in the session (older sessions: computed from the id).</summary>
    private (IByteService Node, string[] Holders) UploadNode(string uploadId, UploadState state)
    {
        var owners = state.Owners.Length > 0 ? state.Owners : [.. router.OwnersOfUpload(uploadId)];
        if (owners.Length == 0)
        {
            throw new RegistryException(ErrorCode.Unavailable, "no storage node is in the placement view");
        }
        return (router.Node(owners[0]), [owners[0]]);
    }

    /// <summary>
    /// Opens a blob from the first node that has it: the link's holders, then the digest's owners. Null when no
    /// node has it; UNAVAILABLE when a node that might have it could not be asked.
    /// </summary>
    private async Task<Stream?> OpenBlobAsync(Digest digest, long offset, long length, string[] holders, CancellationToken ct)
    {
        RegistryException? unavailable = null;
        foreach (var node in holders.Concat(router.OwnersOfDigest(digest)).Distinct(StringComparer.Ordinal))
        {
            try
            {
                var stream = await router.Node(node).OpenReadAsync(digest, offset, length, ct);
                if (stream is not null)
                {
                    return stream;
                }
            }
            catch (RegistryException e) when (e.Code == ErrorCode.Unavailable)
            {
                unavailable ??= e;
            }
        }
        return unavailable is null ? null : throw unavailable;
    }
}
