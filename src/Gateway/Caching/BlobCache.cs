using System.Diagnostics.Metrics;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Observability;

namespace Wharf.Gateway.Caching;

/// <summary>
/// Blobs by digest in the gateway's memory (DESIGN principle 7: blobs never change, so any gateway caches them). A
/// fleet pulling one image at once then costs one read from a silo per layer, not one per client: concurrent misses
/// share one fetch, and later GETs (and their ranges) are answered from memory. A fetched blob is verified against its
/// digest before it is kept or served (principle 2: every copy is verified). Bytes being fetched are bounded too:
/// past a quarter of the capacity, further misses are streamed as if there were no cache.
/// <para>
/// A miss is only worth a fill (a whole fetch, then a SHA-256 of it, ~0.7 ms per MiB) when the blob will be asked for
/// again before it is evicted. So a full cache admits a blob only when it has been asked for clearly more often lately
/// than the blobs it would evict (TinyLFU's admission, <see cref="FrequencySketch"/>); the others are streamed. A pull
/// storm's layers climb past that bar within a few requests, while a working set larger than the cache, read
/// evenly, no longer churns it: measured in split mode with 1 GiB of 1 MiB blobs against 128 MiB, fills had cost 17 %
/// of the CPU of every miss.
/// </para>
/// </summary>
public sealed class BlobCache
{
    private readonly ContentCache _content;
    private readonly Counter<long> _lookups;
    private readonly long _maxBlob;
    private long _fetchingBytes;
    private readonly Lock _sketchLock = new();
    private readonly FrequencySketch _sketch = new();

    private static readonly KeyValuePair<string, object?> Hit = new("result", "hit");
    private static readonly KeyValuePair<string, object?> Miss = new("result", "miss");
    private static readonly KeyValuePair<string, object?> Bypass = new("result", "bypass");

    /// <param name="maxBlobBytes">
    /// The largest blob kept (at most an eighth of the capacity). A miss is fetched whole before its first byte is sent,
    /// so a large layer would wait for all of itself: measured with 25 MB layers, a single client's pull of a 100 MB
    /// image took 3× as long as streaming it. Larger blobs are streamed, as without a cache.
    /// </param>
    public BlobCache(long capacityBytes, WharfMetrics metrics, long maxBlobBytes = long.MaxValue)
    {
        _content = new ContentCache(capacityBytes);
        _maxBlob = Math.Min(maxBlobBytes, capacityBytes / 8);
        _lookups = metrics.BlobCacheLookups;
        if (capacityBytes > 0)
        {
            metrics.ObserveBlobCacheSize(() => _content.Size);
        }
    }

    public long Size => _content.Size;

    /// <summary>Whether a blob of <paramref name="size"/> bytes is kept here (else it is always streamed).</summary>
    public bool Keeps(long size) => size > 0 && size <= _maxBlob;

    /// <summary>The outcome of a lookup: <see cref="Cached"/> false means the caller streams the blob itself.</summary>
    public readonly record struct Lookup(bool Cached, byte[]? Body);

    /// <summary>
    /// The whole blob: from memory, or through <paramref name="fetch"/> (shared by concurrent misses, so it must not
    /// depend on one caller's cancellation), verified and then kept. Body null: no node has it.
    /// </summary>
    public async Task<Lookup> GetAsync(Digest digest, long size, Func<Task<byte[]?>> fetch, CancellationToken ct)
    {
        if (_content.TryGet(digest, out var cached))
        {
            lock (_sketchLock)
            {
                _sketch.Increment(digest);
            }
            _lookups.Add(1, Hit);
            return new Lookup(true, cached);
        }
        int frequency;
        lock (_sketchLock)
        {
            _sketch.Increment(digest);
            frequency = _sketch.Estimate(digest);
        }
        var reserved = false;
        if (!_content.IsFetching(digest))
        {
            if (!Admits(frequency, size))
            {
                _lookups.Add(1, Bypass);
                return new Lookup(false, null);
            }
            if (Interlocked.Add(ref _fetchingBytes, size) > _content.Capacity / 4)
            {
                Interlocked.Add(ref _fetchingBytes, -size);
                _lookups.Add(1, Bypass);
                return new Lookup(false, null);
            }
            reserved = true;
        }
        _lookups.Add(1, Miss);
        var invoked = false; // Set before the fetch's first await, so known when GetOrFetchAsync returns.
        var task = _content.GetOrFetchAsync(digest, async () =>
        {
            invoked = true;
            try
            {
                var body = await fetch();
                if (body is not null && (body.Length != size || Digest.Compute(digest.Algorithm, body) != digest))
                {
                    throw new RegistryException(ErrorCode.Unavailable, $"the bytes of {digest} a storage node sent do not match the digest");
                }
                return body;
            }
            finally
            {
                if (reserved)
                {
                    Interlocked.Add(ref _fetchingBytes, -size);
                }
            }
        }, out _);
        if (reserved && !invoked)
        {
            Interlocked.Add(ref _fetchingBytes, -size); // Another caller's fetch or a cached copy answered: nothing fetched for us.
        }
        return new Lookup(true, await task.WaitAsync(ct));
    }

    /// <summary>
    /// Whether a blob asked for <paramref name="frequency"/> times lately earns a fill: always while it fits in free
    /// space; else only when that is well above (by more than twice the square root, the spread of counts of blobs read
    /// equally often) the most asked-for of the blobs it would evict.
    /// </summary>
    private bool Admits(int frequency, long size)
    {
        var victims = _content.EvictionScore(size, d =>
        {
            lock (_sketchLock)
            {
                return _sketch.Estimate(d);
            }
        });
        return victims is not { } v || frequency > v + (2 * Math.Sqrt(v)) + 1;
    }
}
