using System.Diagnostics.Metrics;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Observability;

namespace Wharf.Gateway.Caching;

/// <summary>
/// The gateway's manifest caches (DESIGN principle 7: cache what is immutable, lease what is not): resolutions under
/// the repository grain's lease (<see cref="LeasedResolutions"/>) and bodies by digest (<see cref="ContentCache"/>).
/// With both warm, a manifest GET by tag or digest makes no call to a silo. Off when
/// <c>Wharf:Gateway:ManifestCacheMiB</c> is 0: every GET then asks the grain and the byte service, as before.
/// </summary>
public sealed class ManifestCache
{
    private static readonly KeyValuePair<string, object?> ResolutionLabel = new("cache", "resolution");
    private static readonly KeyValuePair<string, object?> BodyLabel = new("cache", "body");
    private static readonly KeyValuePair<string, object?> Hit = new("result", "hit");
    private static readonly KeyValuePair<string, object?> Miss = new("result", "miss");

    private readonly IGrainFactory _grains;
    private readonly Counter<long> _lookups;
    private readonly Lock _lock = new();
    private ITagLeaseHolder? _holder;

    public ManifestCache(ManifestCacheOptions options, IGrainFactory grains, WharfMetrics metrics)
    {
        _grains = grains;
        _lookups = metrics.ManifestCacheLookups;
        Enabled = options.Enabled;
        Bodies = new ContentCache((long)options.ManifestCacheMiB << 20);
        Resolutions = new LeasedResolutions(() => metrics.TagLeaseRevocations.Add(1));
        metrics.ObserveManifestCacheSize(() => Bodies.Size);
    }

    public bool Enabled { get; }

    public ContentCache Bodies { get; }

    public LeasedResolutions Resolutions { get; }

    /// <summary>
    /// This gateway's observer reference, made once (Orleans holds the object weakly: <see cref="Resolutions"/>
    /// keeps it alive). Made lazily, as the Orleans client may still be connecting while the host starts.
    /// </summary>
    private ITagLeaseHolder Holder
    {
        get
        {
            if (_holder is { } made)
            {
                return made;
            }
            lock (_lock)
            {
                return _holder ??= _grains.CreateObjectReference<ITagLeaseHolder>(Resolutions);
            }
        }
    }

    /// <summary>Resolves a tag or digest of <paramref name="name"/>: from the cache under a live lease, else from its grain.</summary>
    public async Task<ManifestRef?> ResolveAsync(IRepositoryGrain repository, string name, string reference)
    {
        if (!Enabled)
        {
            return await repository.ResolveManifest(reference);
        }
        if (Resolutions.TryGet(name, reference, out var cached, out var refresh) && !refresh)
        {
            _lookups.Add(1, ResolutionLabel, Hit);
            return cached;
        }
        _lookups.Add(1, ResolutionLabel, Miss);
        var ticket = Resolutions.Begin(name);
        try
        {
            var answer = await repository.ResolveManifestLeased(reference, Holder);
            Resolutions.Complete(ticket, reference, answer);
            return answer.Manifest;
        }
        catch when (refresh)
        {
            Resolutions.Abandon(name, reference);
            throw;
        }
    }

    /// <summary>A manifest body by digest: from the cache, or through <paramref name="fetch"/> (shared by concurrent misses).</summary>
    public async Task<byte[]?> BodyAsync(Digest digest, Func<Task<byte[]?>> fetch, CancellationToken ct)
    {
        var task = Bodies.GetOrFetchAsync(digest, fetch, out var hit);
        _lookups.Add(1, BodyLabel, hit ? Hit : Miss);
        return await task.WaitAsync(ct);
    }
}
