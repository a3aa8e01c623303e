using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Caching;

namespace Wharf.Tests.Unit.Caching;

/// <summary>The gateway side of DESIGN principle 7: leased resolutions and the body cache by digest.</summary>
public class ManifestCacheTests
{
    private static readonly ManifestRef V1 = new(Digest.Compute(Digest.Sha256, "one"u8), "application/vnd.oci.image.manifest.v1+json", 3);
    private static readonly ManifestRef V2 = new(Digest.Compute(Digest.Sha256, "two"u8), "application/vnd.oci.image.manifest.v1+json", 3);

    private static LeasedManifest Leased(ManifestRef m, double seconds = 5) => new(m, TimeSpan.FromSeconds(seconds));

    [Fact]
    public void A_leased_answer_is_served_until_its_repository_is_revoked()
    {
        var cache = new LeasedResolutions();
        cache.Complete(cache.Begin("app"), "latest", Leased(V1));
        Assert.True(cache.TryGet("app", "latest", out var hit, out var refresh));
        Assert.Equal(V1, hit);
        Assert.False(refresh);
        Assert.False(cache.TryGet("other", "latest", out _, out _));

        cache.Revoke("app");
        Assert.False(cache.TryGet("app", "latest", out _, out _));
    }

    [Fact]
    public void An_answer_whose_request_began_before_a_revocation_is_not_cached()
    {
        // The grain may have read it before the change it is revoking for.
        var cache = new LeasedResolutions();
        var ticket = cache.Begin("app");
        cache.Revoke("app");
        cache.Complete(ticket, "latest", Leased(V1));
        Assert.False(cache.TryGet("app", "latest", out _, out _));

        // One that began after the revocation is.
        cache.Complete(cache.Begin("app"), "latest", Leased(V2));
        Assert.True(cache.TryGet("app", "latest", out var hit, out _));
        Assert.Equal(V2, hit);
    }

    [Fact]
    public void Not_found_and_unleased_answers_are_not_cached()
    {
        var cache = new LeasedResolutions();
        cache.Complete(cache.Begin("app"), "latest", new LeasedManifest(null, TimeSpan.FromSeconds(5)));
        cache.Complete(cache.Begin("app"), "stable", new LeasedManifest(V1, TimeSpan.Zero));
        Assert.False(cache.TryGet("app", "latest", out _, out _));
        Assert.False(cache.TryGet("app", "stable", out _, out _));
    }

    [Fact(Timeout = 10_000)]
    public async Task An_entry_is_refreshed_by_one_caller_in_its_second_half_and_gone_when_its_lease_ends()
    {
        // A clock the test moves, so a loaded machine cannot push a step past the lease.
        var clock = new ManualClock();
        var cache = new LeasedResolutions(time: clock);
        cache.Complete(cache.Begin("app"), "latest", Leased(V1, 0.6));
        clock.Advance(TimeSpan.FromMilliseconds(200));
        Assert.True(cache.TryGet("app", "latest", out _, out var early));
        Assert.False(early);
        clock.Advance(TimeSpan.FromMilliseconds(150));
        Assert.True(cache.TryGet("app", "latest", out _, out var first));
        Assert.True(cache.TryGet("app", "latest", out _, out var second));
        Assert.True(first);
        Assert.False(second);
        clock.Advance(TimeSpan.FromMilliseconds(350));
        Assert.False(cache.TryGet("app", "latest", out _, out _));
        await Task.CompletedTask;
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks = 1_000_000_000;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;

        public override long GetTimestamp() => _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }

    [Fact]
    public void Bodies_are_evicted_least_recently_used_first_by_bytes()
    {
        var cache = new ContentCache(8 * 100);
        var digests = Enumerable.Range(0, 9).Select(i => Digest.Compute(Digest.Sha256, [(byte)i])).ToArray();
        for (var i = 0; i < 8; i++)
        {
            cache.Add(digests[i], new byte[100]);
        }
        Assert.True(cache.TryGet(digests[0], out _)); // now the most recent
        cache.Add(digests[8], new byte[100]);
        Assert.Equal(800, cache.Size);
        Assert.True(cache.TryGet(digests[0], out _));
        Assert.False(cache.TryGet(digests[1], out _));
        // A body above an eighth of the capacity is not kept.
        cache.Add(Digest.Compute(Digest.Sha256, "big"u8), new byte[101]);
        Assert.Equal(800, cache.Size);
    }

    [Fact(Timeout = 10_000)]
    public async Task Concurrent_misses_of_one_digest_share_one_fetch()
    {
        var cache = new ContentCache(1 << 20);
        var release = new TaskCompletionSource();
        var fetches = 0;
        async Task<byte[]?> Fetch()
        {
            Interlocked.Increment(ref fetches);
            await release.Task;
            return [1, 2, 3];
        }
        var calls = Enumerable.Range(0, 10).Select(_ => cache.GetOrFetchAsync(V1.Digest, Fetch, out bool _)).ToArray();
        release.SetResult();
        var bodies = await Task.WhenAll(calls);
        Assert.Equal(1, fetches);
        Assert.All(bodies, b => Assert.Equal([1, 2, 3], b!));
        Assert.True(cache.TryGet(V1.Digest, out _));
    }
}
