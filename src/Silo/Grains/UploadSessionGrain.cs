using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// One upload session (DESIGN principle 8). The record (repository, acknowledged offset, hash midstate) is
/// rewritten after every chunk through the upload's replicated log (acknowledged by W of the upload's owners), so any
/// gateway, after any restart or the loss of one owner, continues where the last acknowledged chunk ended.
/// The chunk lease lives only in memory: a restart or a new activation frees it, and it expires on its own.
/// </summary>
[ShardOwnerPlacement, GrainType(GrainTypes.Upload)]
public sealed class UploadSessionGrain(RecordStore records, ReplicatedLogs logs) : LogGrain(logs), IUploadSessionGrain
{
    protected override string LogId => "u/" + this.GetPrimaryKeyString();

    private static readonly TimeSpan LeaseTimeout = TimeSpan.FromMinutes(5);

    private Guid _leaseToken;
    private DateTimeOffset _leaseExpires;

    private string Key => Keys.Upload(this.GetPrimaryKeyString());

    public async Task<UploadState> Start(string repository, string algorithm, string[] owners)
    {
        using var hash = ResumableHash.Create(algorithm);
        var now = DateTimeOffset.UtcNow;
        var record = new UploadRecord(1, repository, algorithm, 0, hash.ExportState(), now, now, owners);
        await AppendAsync(new RecordBatch().Put(Key, RecordJson.Encode(record)));
        return ToState(record);
    }

    public async Task<UploadState?> Get()
    {
        await ReadableAsync();
        var r = Load();
        return r is null ? null : ToState(r);
    }

    public async Task<ChunkLease?> BeginChunk(string repository)
    {
        await ReadableAsync();
        var r = Load();
        if (r is null || r.Repository != repository)
        {
            return null;
        }
        var now = DateTimeOffset.UtcNow;
        if (_leaseToken != Guid.Empty && _leaseExpires > now)
        {
            return new ChunkLease(Guid.Empty, ToState(r));
        }
        _leaseToken = Guid.NewGuid();
        _leaseExpires = now + LeaseTimeout;
        return new ChunkLease(_leaseToken, ToState(r));
    }

    public async Task<bool> CompleteChunk(Guid token, long newOffset, byte[] hashState, string[]? owners = null, long fromOffset = -1)
    {
        if (token != Guid.Empty && token != _leaseToken && _leaseToken == Guid.Empty && fromOffset >= 0)
        {
            // The lease came from an earlier activation: this one must read the committed record before judging it.
            await ReadableAsync();
        }
        var r = Load();
        if (r is null || token == Guid.Empty)
        {
            return false;
        }
        var granted = token == _leaseToken;
        var orphaned = !granted && _leaseToken == Guid.Empty && fromOffset >= 0 && r.Offset == fromOffset;
        if (!granted && !orphaned)
        {
            return false;
        }
        var updated = r with { Offset = newOffset, HashState = hashState, Touched = DateTimeOffset.UtcNow, Owners = owners ?? r.Owners };
        await AppendAsync(new RecordBatch().Put(Key, RecordJson.Encode(updated)));
        _leaseToken = Guid.Empty;
        return true;
    }

    public Task ReleaseChunk(Guid token)
    {
        if (token == _leaseToken)
        {
            _leaseToken = Guid.Empty;
        }
        return Task.CompletedTask;
    }

    public async Task<bool> Expire(DateTimeOffset cutoff)
    {
        // Decided on the leader's committed record, not on one replica's copy (which may lag behind a chunk).
        await ReadableAsync();
        var r = Load();
        if (r is null || r.Touched >= cutoff || (_leaseToken != Guid.Empty && _leaseExpires > DateTimeOffset.UtcNow))
        {
            return false;
        }
        await End();
        return true;
    }

    public async Task End()
    {
        if (Load() is not null)
        {
            // No commit notice of its own: the Forget below carries it to every owner.
            await AppendAsync(new RecordBatch().Delete(Key), notifyCommit: false);
        }
        _leaseToken = Guid.Empty;
        // The upload id is never used again: its log, and the tombstone the delete left, go too.
        await ForgetAsync();
    }

    /// <summary>
    /// No record: the upload ended, or this id was never started (ids are random and never reused), so the log goes
    /// when this activation does.
    /// </summary>
    protected override bool Finished => Load() is null;

    private UploadRecord? Load() => RecordJson.Decode<UploadRecord>(records.Get(Key));

    private static UploadState ToState(UploadRecord r) =>
        new(r.Repository, r.Algorithm, r.Offset, r.HashState, r.Started, r.Touched, r.Owners ?? []);
}
