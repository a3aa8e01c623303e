using Orleans.Concurrency;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// The leader of one repository's records (DESIGN principle 5). Every change is one batch appended to the
/// repository's replicated log; reads go to this node's replica directly, so they never queue behind a write
/// (Reentrant). Changes run one at a time (read, decide, append), so two never interleave mid-change.
/// Each operation touches O(1) keys: a repository with 50,000 tags costs a push no more than one with 5.
/// Gateways cache resolutions under leases (<see cref="TagLeases"/>, DESIGN principle 7): granted in the read's turn,
/// revoked after a change that alters a resolution is appended and before it is acknowledged.
/// </summary>
[Reentrant, ShardOwnerPlacement, GrainType(GrainTypes.Repository)]
public sealed class RepositoryGrain(RecordStore records, ReplicatedLogs logs, TagLeasePolicy leasePolicy) : LogGrain(logs), IRepositoryGrain
{
    private readonly SemaphoreSlim _changes = new(1, 1);
    private readonly TagLeases leases = leasePolicy.NewActivation();

    private string Name => this.GetPrimaryKeyString();

    protected override string LogId => "r/" + Name;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await base.OnActivateAsync(cancellationToken);
        // Leases an earlier activation granted may still be held by gateways: none if no leader ever led this
        // repository or the last one stepped down cleanly, else up to one lease period after its read lease ran out.
        leases.InheritFor(Leader.HadPreviousLeader && !Leader.ResumedQuiesced ? leasePolicy.Period + Leader.PreviousLeaderReadLease : TimeSpan.Zero);
    }

    /// <summary>
    /// Before stepping down, every lease this activation granted (or inherited) must be over. An idle grain's are long
    /// gone; when more than a second is left (a silo shutting down mid-traffic), the marker is skipped rather than
    /// holding the shutdown, and the next leader waits instead.
    /// </summary>
    protected override async Task<bool> BeforeQuiesceAsync(CancellationToken cancellationToken)
    {
        if (leases.Outstanding() > TimeSpan.FromSeconds(1))
        {
            return false;
        }
        await leases.RevokeAsync(Name);
        return true;
    }

    /// <summary>Runs one change at a time: what it read stays true until its batch is appended.</summary>
    private async Task<T> ChangeAsync<T>(Func<Task<T>> change)
    {
        await _changes.WaitAsync();
        try
        {
            return await change();
        }
        finally
        {
            _changes.Release();
        }
    }

    public async Task<BlobLink?> GetBlobLink(Digest digest)
    {
        await ReadableAsync();
        var link = RecordJson.Decode<BlobLinkRecord>(records.Get(Keys.BlobLink(Name, digest)));
        return link is null ? null : new BlobLink(link.Size, link.Holders ?? []);
    }

    public Task LinkBlob(Digest digest, long size, string[] holders) => ChangeAsync(async () =>
    {
        var existing = RecordJson.Decode<BlobLinkRecord>(records.Get(Keys.BlobLink(Name, digest)));
        if (existing is not null && holders.All(h => existing.Holders?.Contains(h) == true))
        {
            return true;
        }
        // The same blob pushed again through another node: remember every holder, first ones first.
        var all = (existing?.Holders ?? []).Concat(holders).Distinct(StringComparer.Ordinal).ToArray();
        var batch = new RecordBatch();
        await EnsureHeaderAsync(batch);
        batch.Put(Keys.BlobLink(Name, digest), RecordJson.Encode(new BlobLinkRecord(1, size, existing?.Created ?? DateTimeOffset.UtcNow, all)));
        batch.Put(Keys.BlobBackReference(digest, Name), RecordJson.Empty);
        await AppendAsync(batch);
        return true;
    });

    public Task<bool> UnlinkBlob(Digest digest) => ChangeAsync(async () =>
    {
        if (!records.Exists(Keys.BlobLink(Name, digest)))
        {
            return false;
        }
        var batch = new RecordBatch()
            .Delete(Keys.BlobLink(Name, digest))
            .Delete(Keys.BlobBackReference(digest, Name));
        await AppendAsync(batch);
        return true;
    });

    public async Task<ManifestRef?> ResolveManifest(string reference)
    {
        await ReadableAsync();
        return Resolve(reference);
    }

    public async Task<LeasedManifest> ResolveManifestLeased(string reference, ITagLeaseHolder holder)
    {
        // Only while this activation leads (its read lease holds), and the grant is in the read's turn (no await
        // between): a change appended after this read finds the lease. "Not found" is not leased: gateways do not
        // cache it, so creating a tag or manifest revokes nothing.
        await ReadableAsync();
        var found = Resolve(reference);
        return new LeasedManifest(found, found is null ? TimeSpan.Zero : leases.Grant(holder));
    }

    private ManifestRef? Resolve(string reference)
    {
        Digest digest;
        if (Digest.TryParse(reference, out var parsed))
        {
            digest = parsed.Value;
        }
        else
        {
            var tag = RecordJson.Decode<TagRecord>(records.Get(Keys.Tag(Name, reference)));
            if (tag is null)
            {
                return null;
            }
            digest = Digest.Parse(tag.Digest);
        }
        var m = RecordJson.Decode<ManifestRecord>(records.Get(Keys.Manifest(Name, digest)));
        return m is null ? null : new ManifestRef(digest, m.MediaType, m.Size);
    }

    public Task<RepositoryResult> PutManifest(ManifestPut manifest, string[] tags) => ChangeAsync(async () =>
    {
        foreach (var blob in manifest.Blobs)
        {
            if (!records.Exists(Keys.BlobLink(Name, blob)))
            {
                return new RepositoryResult(ErrorCode.ManifestBlobUnknown.Code, $"blob {blob} is not in repository {Name}");
            }
        }
        foreach (var child in manifest.Manifests)
        {
            if (!records.Exists(Keys.Manifest(Name, child)))
            {
                return new RepositoryResult(ErrorCode.ManifestBlobUnknown.Code, $"manifest {child} is not in repository {Name}");
            }
        }
        if (manifest.ImmutableRule is { } rule)
        {
            // Tag immutability (docs/security.md): an existing tag may not move to another digest; the same digest again is fine.
            foreach (var tag in tags)
            {
                var existing = RecordJson.Decode<TagRecord>(records.Get(Keys.Tag(Name, tag)));
                if (existing is not null && existing.Digest != manifest.Digest.ToString())
                {
                    return new RepositoryResult(ErrorCode.Denied.Code, $"tag {tag} of {Name} is immutable (policy {rule}): it points at {existing.Digest} and may not be moved");
                }
            }
        }
        var now = DateTimeOffset.UtcNow;
        var batch = new RecordBatch();
        await EnsureHeaderAsync(batch);
        // Whether a leased resolution changes (read after the last await, like the tags below): the manifest re-pushed
        // as another media type, or a tag moved.
        var previous = RecordJson.Decode<ManifestRecord>(records.Get(Keys.Manifest(Name, manifest.Digest)));
        var revoke = previous is not null && (previous.MediaType != manifest.MediaType || previous.Size != manifest.Size);
        var record = new ManifestRecord(
            1,
            manifest.Digest.ToString(),
            manifest.MediaType,
            manifest.Size,
            manifest.ArtifactType,
            manifest.Subject?.ToString(),
            [.. manifest.Blobs.Select(b => b.ToString())],
            [.. manifest.Manifests.Select(b => b.ToString())],
            manifest.Annotations,
            now);
        batch.Put(Keys.Manifest(Name, manifest.Digest), RecordJson.Encode(record));
        batch.Put(Keys.BlobBackReference(manifest.Digest, Name), RecordJson.Empty);
        if (manifest.Subject is { } subject)
        {
            batch.Put(
                Keys.Referrer(Name, subject, manifest.Digest),
                RecordJson.Encode(new ReferrerRecord(1, manifest.Digest.ToString(), manifest.MediaType, manifest.Size, manifest.ArtifactType, manifest.Annotations)));
        }
        foreach (var tag in tags.Distinct(StringComparer.Ordinal))
        {
            var old = RecordJson.Decode<TagRecord>(records.Get(Keys.Tag(Name, tag)));
            if (old is not null && old.Digest != record.Digest)
            {
                batch.Delete(Keys.ManifestTag(Name, Digest.Parse(old.Digest), tag));
                revoke = true;
            }
            batch.Put(Keys.Tag(Name, tag), RecordJson.Encode(new TagRecord(1, record.Digest, now)));
            batch.Put(Keys.ManifestTag(Name, manifest.Digest, tag), RecordJson.Empty);
        }
        await AppendAsync(batch);
        if (revoke)
        {
            await leases.RevokeAsync(Name);
        }
        return RepositoryResult.Ok;
    });

    public Task<RepositoryResult> DeleteManifest(string reference) => ChangeAsync(async () =>
    {
        var batch = new RecordBatch();
        if (Digest.TryParse(reference, out var parsed))
        {
            var digest = parsed.Value;
            var m = RecordJson.Decode<ManifestRecord>(records.Get(Keys.Manifest(Name, digest)));
            if (m is null)
            {
                return new RepositoryResult(ErrorCode.ManifestUnknown.Code, null);
            }
            batch.Delete(Keys.Manifest(Name, digest));
            batch.Delete(Keys.BlobBackReference(digest, Name));
            if (m.Subject is not null)
            {
                batch.Delete(Keys.Referrer(Name, Digest.Parse(m.Subject), digest));
            }
            // Every tag pointing at it goes with it, found through the manifest's own tag index.
            var prefix = Keys.ManifestTagPrefix(Name, digest);
            List<KeyValuePair<string, byte[]>> page;
            string? after = null;
            do
            {
                page = records.Scan(prefix, after, 1000);
                foreach (var (tag, _) in page)
                {
                    batch.Delete(Keys.Tag(Name, tag));
                    batch.Delete(prefix + tag);
                    after = tag;
                }
            }
            while (page.Count == 1000);
        }
        else
        {
            var tag = RecordJson.Decode<TagRecord>(records.Get(Keys.Tag(Name, reference)));
            if (tag is null)
            {
                return new RepositoryResult(ErrorCode.ManifestUnknown.Code, null);
            }
            batch.Delete(Keys.Tag(Name, reference));
            batch.Delete(Keys.ManifestTag(Name, Digest.Parse(tag.Digest), reference));
        }
        await AppendAsync(batch);
        await leases.RevokeAsync(Name);
        return RepositoryResult.Ok;
    });

    public async Task<Page?> ListTags(string? last, int limit)
    {
        await ReadableAsync();
        if (!records.Exists(Keys.RepositoryHeader(Name)))
        {
            return null;
        }
        var page = records.Scan(Keys.TagPrefix(Name), last, limit + 1);
        var items = page.Take(limit).Select(kv => kv.Key).ToArray();
        return new Page(items, page.Count > limit);
    }

    public async Task<ReferrerPage> ListReferrers(Digest subject, string? artifactType, string? last, int limit)
    {
        await ReadableAsync();
        var prefix = Keys.ReferrerPrefix(Name, subject);
        var items = new List<Referrer>();
        string? next = null;
        var after = last;
        // Filtering may skip records; bound the work per page so a filter that matches nothing stays cheap per call.
        for (var round = 0; round < 64 && items.Count < limit; round++)
        {
            var page = records.Scan(prefix, after, limit);
            var consumed = 0;
            foreach (var (key, value) in page)
            {
                after = key;
                consumed++;
                var r = RecordJson.Decode<ReferrerRecord>(value)!;
                if (artifactType is null || r.ArtifactType == artifactType)
                {
                    items.Add(new Referrer(Digest.Parse(r.Digest), r.MediaType, r.Size, r.ArtifactType, r.Annotations));
                    if (items.Count == limit)
                    {
                        break;
                    }
                }
            }
            // The end of the records only when this short page was read to its end; a page filled mid-way continues.
            if (page.Count < limit && consumed == page.Count)
            {
                after = null;
                break;
            }
        }
        if (after is not null && records.Scan(prefix, after, 1).Count > 0)
        {
            next = after;
        }
        return new ReferrerPage([.. items], next);
    }

    /// <summary>
    /// A new repository is first entered in its catalog shard (on that shard's owner, idempotent), then its header
    /// is written with the change: a crash between leaves at worst a listed repository with no records yet.
    /// </summary>
    private async Task EnsureHeaderAsync(RecordBatch batch)
    {
        if (!records.Exists(Keys.RepositoryHeader(Name)))
        {
            await GrainFactory.GetGrain<ICatalogShardGrain>(Keys.CatalogShard(Name)).Add(Name);
            batch.Put(Keys.RepositoryHeader(Name), RecordJson.Encode(new RepositoryHeaderRecord(1, DateTimeOffset.UtcNow)));
        }
    }
}
