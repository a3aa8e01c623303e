using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Grains;

[GenerateSerializer, Immutable, Alias("wharf.upload-state.v1")]
public sealed record UploadState(
    [property: Id(0)] string Repository,
    [property: Id(1)] string Algorithm,
    [property: Id(2)] long Offset,
    [property: Id(3)] byte[] HashState,
    [property: Id(4)] DateTimeOffset Started,
    [property: Id(5)] DateTimeOffset Touched,
    [property: Id(6)] string[] Owners);

/// <summary>A chunk lease: only its holder may append and advance the upload (two PATCHes never interleave).</summary>
[GenerateSerializer, Immutable, Alias("wharf.chunk-lease.v1")]
public sealed record ChunkLease(
    [property: Id(0)] Guid Token,
    [property: Id(1)] UploadState State);

/// <summary>
/// One upload session (key: upload id). Holds the acknowledged offset and the hash midstate after each chunk
/// (DESIGN principle 8), so any gateway continues the upload after any restart without re-reading its bytes.
/// </summary>
[Alias("wharf.IUploadSessionGrain")]
public interface IUploadSessionGrain : IGrainWithStringKey
{
    /// <summary>Opens the session with its byte owners pinned (DESIGN principle 8): every chunk goes to them.</summary>
    [Alias("Start")]
    Task<UploadState> Start(string repository, string algorithm, string[] owners);

    [Alias("Get")]
    Task<UploadState?> Get();

    /// <summary>Takes the chunk lease; null when the upload is unknown or another chunk is in flight.</summary>
    [Alias("BeginChunk")]
    Task<ChunkLease?> BeginChunk(string repository);

    /// <summary>
    /// Records a chunk W owners synced: the new acknowledged offset, hash state and the owners that have every byte
    /// (null: unchanged, as from a gateway older than replication). Releases the lease.
    /// </summary>
    /// <param name="fromOffset">
    /// Where the chunk began (-1: unknown). When the activation that granted the lease is gone (Orleans deactivated it,
    /// as it does when the silo holding its directory entry dies), a new one holds no lease: the chunk is still
    /// recorded if no other lease is held and the record is still at this offset, so nothing came in between.
    /// </param>
    [Alias("CompleteChunk")]
    Task<bool> CompleteChunk(Guid token, long newOffset, byte[] hashState, string[]? owners = null, long fromOffset = -1);

    [Alias("ReleaseChunk")]
    Task ReleaseChunk(Guid token);

    /// <summary>Ends the session (after commit or on cancel).</summary>
    [Alias("End")]
    Task End();

    /// <summary>Ends the session if it was last touched before <paramref name="cutoff"/> (the janitor); true when it did.</summary>
    [Alias("Expire")]
    Task<bool> Expire(DateTimeOffset cutoff);
}
