using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Bytes;

/// <summary>
/// The byte path between a gateway and the silo that holds the bytes (DESIGN principle 1: grains coordinate,
/// this moves bytes). In the all-in-one it is called in-process; the cluster puts the same calls on gRPC.
/// Every method streams: nothing here holds a whole blob in memory.
/// </summary>
public interface IByteService
{
    /// <summary>Size of a committed blob, or null when this store does not hold it.</summary>
    Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Opens <paramref name="length"/> bytes of a committed blob from <paramref name="offset"/>; null when absent.</summary>
    Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a blob whose digest is known up front (monolithic PUT, manifests). The bytes are verified against
    /// the digest and synced before this returns; a mismatch throws <see cref="RegistryException"/> DIGEST_INVALID
    /// and leaves nothing visible. Returns the blob's size.
    /// </summary>
    Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken);

    /// <summary>
    /// Appends to an upload's part file at <paramref name="offset"/> (the session's acknowledged offset: anything the
    /// part file holds beyond it is cut off first) and syncs. Returns the part's new length.
    /// </summary>
    Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken);

    /// <summary>
    /// Commits an upload's first <paramref name="length"/> bytes as the blob <paramref name="digest"/>, already verified
    /// by the caller's resumable hash. A rename for large blobs, not a copy.
    /// </summary>
    Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken);

    /// <summary>Removes an upload's part file (cancel, or after commit).</summary>
    Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken);
}
