using Wharf.Contracts.Grains;
using Wharf.Silo.Placement;
using Wharf.Contracts.Oci;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// One upload session (DESIGN principle 8). The record (repository, acknowledged offset, hash midstate) is
/// rewritten, synced, after every chunk, so a restarted process continues where the last acknowledged chunk ended.
/// The chunk lease lives only in memory: a restart or a new activation frees it, and it expires on its own.
/// </summary>
[ShardOwnerPlacement, GrainType(GrainTypes.Upload)]
public sealed class UploadSessionGrain(RecordStore records) : Grain, IUploadSessionGrain
{
    private static readonly TimeSpan LeaseTimeout = TimeSpan.FromMinutes(5);

    private Guid _leaseToken;
    private DateTimeOffset _leaseExpires;

    private string Key => Keys.Upload(this.GetPrimaryKeyString());

    public Task<UploadState> Start(string repository, string algorithm, string[] owners)
    {
        using var hash = ResumableHash.Create(algorithm);
        var now = DateTimeOffset.UtcNow;
        var record = new UploadRecord(1, repository, algorithm, 0, hash.ExportState(), now, now, owners);
        records.Write(new RecordBatch().Put(Key, RecordJson.Encode(record)));
        return Task.FromResult(ToState(record));
    }

    public Task<UploadState?> Get()
    {
        var r = Load();
        return Task.FromResult(r is null ? null : ToState(r));
    }

    public Task<ChunkLease?> BeginChunk(string repository)
    {
        var r = Load();
        if (r is null || r.Repository != repository)
        {
            return Task.FromResult<ChunkLease?>(null);
        }
        var now = DateTimeOffset.UtcNow;
        if (_leaseToken != Guid.Empty && _leaseExpires > now)
        {
            return Task.FromResult<ChunkLease?>(new ChunkLease(Guid.Empty, ToState(r)));
        }
        _leaseToken = Guid.NewGuid();
        _leaseExpires = now + LeaseTimeout;
        return Task.FromResult<ChunkLease?>(new ChunkLease(_leaseToken, ToState(r)));
    }

    public Task<bool> CompleteChunk(Guid token, long newOffset, byte[] hashState, string[]? owners = null)
    {
        var r = Load();
        if (r is null || token == Guid.Empty || token != _leaseToken)
        {
            return Task.FromResult(false);
        }
        var updated = r with { Offset = newOffset, HashState = hashState, Touched = DateTimeOffset.UtcNow, Owners = owners ?? r.Owners };
        records.Write(new RecordBatch().Put(Key, RecordJson.Encode(updated)));
        _leaseToken = Guid.Empty;
        return Task.FromResult(true);
    }

    public Task ReleaseChunk(Guid token)
    {
        if (token == _leaseToken)
        {
            _leaseToken = Guid.Empty;
        }
        return Task.CompletedTask;
    }

    public Task End()
    {
        records.Write(new RecordBatch().Delete(Key));
        _leaseToken = Guid.Empty;
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    private UploadRecord? Load() => RecordJson.Decode<UploadRecord>(records.Get(Key));

    private static UploadState ToState(UploadRecord r) =>
        new(r.Repository, r.Algorithm, r.Offset, r.HashState, r.Started, r.Touched, r.Owners ?? []);
}
