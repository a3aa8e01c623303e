using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Oci;
using ErrorCode = Wharf.Contracts.Oci.ErrorCode;
using Wharf.Gateway.Caching;
using Wharf.Gateway.Observability;
using Wharf.Membership.Topology;

namespace Wharf.Tests.Unit.Caching;

/// <summary>The gateway's blob cache (DESIGN principle 7): one fetch per digest, verified before it is served or kept.</summary>
public class BlobCacheTests
{
    private static readonly WharfMetrics Metrics = new(new TopologyFeed(new PlacementViewStore(null!, "test"), NullLogger<TopologyFeed>.Instance));

    private static (byte[] Bytes, Digest Digest) Blob(int size)
    {
        var bytes = RandomNumberGenerator.GetBytes(size);
        return (bytes, Digest.Compute(Digest.Sha256, bytes));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_pull_storm_of_one_blob_costs_one_fetch_and_later_gets_are_answered_from_memory()
    {
        var cache = new BlobCache(64 << 20, Metrics);
        var (bytes, digest) = Blob(1 << 20);
        var release = new TaskCompletionSource();
        var fetches = 0;
        async Task<byte[]?> Fetch()
        {
            Interlocked.Increment(ref fetches);
            await release.Task;
            return (byte[])bytes.Clone();
        }
        var storm = Enumerable.Range(0, 32).Select(_ => cache.GetAsync(digest, bytes.Length, Fetch, CancellationToken.None)).ToArray();
        release.SetResult();
        var answers = await Task.WhenAll(storm);
        Assert.All(answers, a => Assert.True(a.Cached && a.Body!.AsSpan().SequenceEqual(bytes)));
        var later = await cache.GetAsync(digest, bytes.Length, Fetch, CancellationToken.None);
        Assert.True(later.Body!.AsSpan().SequenceEqual(bytes));
        Assert.Equal(1, fetches);
        Assert.Equal(bytes.Length, cache.Size);
    }

    [Fact(Timeout = 10_000)]
    public async Task Bytes_that_do_not_match_the_digest_are_refused_and_not_kept()
    {
        var cache = new BlobCache(64 << 20, Metrics);
        var (bytes, digest) = Blob(4096);
        var corrupt = (byte[])bytes.Clone();
        corrupt[100] ^= 1;
        var error = await Assert.ThrowsAsync<RegistryException>(() => cache.GetAsync(digest, bytes.Length, () => Task.FromResult<byte[]?>(corrupt), CancellationToken.None));
        Assert.Equal(ErrorCode.Unavailable, error.Code);
        var shortBody = await Assert.ThrowsAsync<RegistryException>(() => cache.GetAsync(digest, bytes.Length, () => Task.FromResult<byte[]?>(bytes[..100]), CancellationToken.None));
        Assert.Equal(ErrorCode.Unavailable, shortBody.Code);
        Assert.Equal(0, cache.Size);

        // The next request fetches again, and good bytes are kept.
        var good = await cache.GetAsync(digest, bytes.Length, () => Task.FromResult<byte[]?>(bytes), CancellationToken.None);
        Assert.True(good.Body!.AsSpan().SequenceEqual(bytes));
        Assert.Equal(bytes.Length, cache.Size);
    }

    [Fact(Timeout = 10_000)]
    public async Task An_absent_blob_is_answered_as_absent_and_not_remembered()
    {
        var cache = new BlobCache(64 << 20, Metrics);
        var (bytes, digest) = Blob(4096);
        var absent = await cache.GetAsync(digest, bytes.Length, () => Task.FromResult<byte[]?>(null), CancellationToken.None);
        Assert.True(absent.Cached);
        Assert.Null(absent.Body);
        var present = await cache.GetAsync(digest, bytes.Length, () => Task.FromResult<byte[]?>(bytes), CancellationToken.None);
        Assert.NotNull(present.Body);
    }

    [Fact(Timeout = 10_000)]
    public async Task Large_blobs_are_streamed_and_misses_past_a_quarter_of_the_capacity_in_flight_bypass_the_cache()
    {
        var cache = new BlobCache(8 << 20, Metrics);
        Assert.True(cache.Keeps(1 << 20));
        Assert.False(cache.Keeps((1 << 20) + 1));
        Assert.False(cache.Keeps(0));
        Assert.False(new BlobCache(0, Metrics).Keeps(1));
        var capped = new BlobCache(256 << 20, Metrics, maxBlobBytes: 4 << 20);
        Assert.True(capped.Keeps(4 << 20));
        Assert.False(capped.Keeps((4 << 20) + 1));

        // Two 1 MiB fetches in flight fill the 2 MiB allowance; a third different blob is streamed by its caller.
        var release = new TaskCompletionSource();
        var blobs = Enumerable.Range(0, 3).Select(_ => Blob(1 << 20)).ToArray();
        Func<Task<byte[]?>> Slow(byte[] b) => async () => { await release.Task; return b; };
        var first = cache.GetAsync(blobs[0].Digest, 1 << 20, Slow(blobs[0].Bytes), CancellationToken.None);
        var second = cache.GetAsync(blobs[1].Digest, 1 << 20, Slow(blobs[1].Bytes), CancellationToken.None);
        var third = await cache.GetAsync(blobs[2].Digest, 1 << 20, Slow(blobs[2].Bytes), CancellationToken.None);
        Assert.False(third.Cached);
        // Joining a fetch already running costs nothing and is allowed.
        var joined = cache.GetAsync(blobs[0].Digest, 1 << 20, Slow(blobs[0].Bytes), CancellationToken.None);
        release.SetResult();
        Assert.NotNull((await first).Body);
        Assert.NotNull((await second).Body);
        Assert.NotNull((await joined).Body);
        // Once they finished, the allowance is free again.
        var after = await cache.GetAsync(blobs[2].Digest, 1 << 20, () => Task.FromResult<byte[]?>(blobs[2].Bytes), CancellationToken.None);
        Assert.True(after.Cached);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_full_cache_streams_blobs_read_no_more_often_than_its_own_and_admits_one_a_storm_asks_for()
    {
        // Room for 8 blobs of 64 KiB; 8 residents, each read 10 times.
        var cache = new BlobCache(8 * 65536, Metrics, maxBlobBytes: 65536);
        var residents = Enumerable.Range(0, 8).Select(_ => Blob(65536)).ToArray();
        var fetches = 0;
        Func<Task<byte[]?>> FetchOf(byte[] bytes) => () =>
        {
            Interlocked.Increment(ref fetches);
            return Task.FromResult<byte[]?>(bytes);
        };
        for (var round = 0; round < 10; round++)
        {
            foreach (var (bytes, digest) in residents)
            {
                Assert.True((await cache.GetAsync(digest, bytes.Length, FetchOf(bytes), CancellationToken.None)).Cached);
            }
        }
        Assert.Equal(8, fetches);

        // A working set read evenly: blobs read once or twice each are streamed, and the residents stay.
        var others = Enumerable.Range(0, 32).Select(_ => Blob(65536)).ToArray();
        for (var round = 0; round < 2; round++)
        {
            foreach (var (bytes, digest) in others)
            {
                Assert.False((await cache.GetAsync(digest, bytes.Length, FetchOf(bytes), CancellationToken.None)).Cached);
            }
        }
        Assert.Equal(8, fetches);
        foreach (var (bytes, digest) in residents)
        {
            Assert.True((await cache.GetAsync(digest, bytes.Length, FetchOf(bytes), CancellationToken.None)).Cached);
        }
        Assert.Equal(8, fetches);

        // A blob a pull storm asks for, far more often than the residents lately, is fetched once and kept.
        var (hot, hotDigest) = Blob(65536);
        var answers = new List<BlobCache.Lookup>();
        for (var i = 0; i < 40; i++)
        {
            answers.Add(await cache.GetAsync(hotDigest, hot.Length, FetchOf(hot), CancellationToken.None));
        }
        Assert.False(answers[0].Cached);
        Assert.True(answers[^1].Cached && answers[^1].Body!.AsSpan().SequenceEqual(hot));
        Assert.Equal(9, fetches);
        Assert.Equal(8 * 65536, cache.Size);
    }
}
