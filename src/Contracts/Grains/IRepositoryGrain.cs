using Orleans.Concurrency;
using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Grains;

/// <summary>
/// One repository (key: its name). The leader of the repository's small log of records (DESIGN principle 5):
/// tags, manifest descriptors, layer links and referrers change only through it, in whole batches.
/// </summary>
[Alias("wharf.IRepositoryGrain")]
public interface IRepositoryGrain : IGrainWithStringKey
{
    /// <summary>The blob's link when this repository has it, else null (blobs are scoped to repositories).</summary>
    [Alias("GetBlobLink"), ReadOnly]
    Task<BlobLink?> GetBlobLink(Digest digest);

    /// <summary>Links a blob, recording which nodes hold its bytes.</summary>
    [Alias("LinkBlob")]
    Task LinkBlob(Digest digest, long size, string[] holders);

    /// <summary>Removes the link; false when there was none.</summary>
    [Alias("UnlinkBlob")]
    Task<bool> UnlinkBlob(Digest digest);

    /// <summary>Resolves a tag or digest reference to a manifest this repository holds.</summary>
    [Alias("ResolveManifest"), ReadOnly]
    Task<ManifestRef?> ResolveManifest(string reference);

    /// <summary>
    /// <see cref="ResolveManifest"/> under a lease (DESIGN principle 7): until the lease ends, every change that
    /// alters a resolution of this repository (a tag moved or deleted, a manifest deleted) first revokes it through
    /// <paramref name="holder"/>, and is acknowledged only after that.
    /// </summary>
    [Alias("ResolveManifestLeased"), ReadOnly]
    Task<LeasedManifest> ResolveManifestLeased(string reference, ITagLeaseHolder holder);

    [Alias("PutManifest")]
    Task<RepositoryResult> PutManifest(ManifestPut manifest, string[] tags);

    /// <summary>Deletes a manifest by digest (and every tag pointing at it) or a single tag.</summary>
    [Alias("DeleteManifest")]
    Task<RepositoryResult> DeleteManifest(string reference);

    [Alias("ListTags"), ReadOnly]
    Task<Page?> ListTags(string? last, int limit);

    [Alias("ListReferrers"), ReadOnly]
    Task<ReferrerPage> ListReferrers(Digest subject, string? artifactType, string? last, int limit);
}

/// <summary>One shard of the catalog index (key: shard number), placed on that shard's owner.</summary>
[Alias("wharf.ICatalogShardGrain")]
public interface ICatalogShardGrain : IGrainWithIntegerKey
{
    [Alias("Add")]
    Task Add(string repository);

    [Alias("List"), ReadOnly]
    Task<Page> List(string? last, int limit);
}

/// <summary>Lists repositories from the sharded catalog index (DESIGN principle 10). Key: 0.</summary>
[Alias("wharf.ICatalogGrain")]
public interface ICatalogGrain : IGrainWithIntegerKey
{
    [Alias("List"), ReadOnly]
    Task<Page> List(string? last, int limit);
}
