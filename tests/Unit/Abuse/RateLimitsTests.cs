using System.Diagnostics;
using Wharf.Gateway.Abuse;
using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Abuse;

public sealed class RateLimitsTests
{
    [Fact(Timeout = 20_000)]
    public async Task Failed_logins_empty_the_bucket_and_a_refill_lets_the_user_try_again()
    {
        using var limits = new RateLimits(new RateLimitOptions { FailedLogins = new RateClass { PerSecond = 5, Burst = 2 } }, new TrustedProxyList([]));
        Assert.True(limits.MayTryLogin("10.0.0.1", "alice", out _));
        limits.LoginFailed("10.0.0.1", "alice");
        limits.LoginFailed("10.0.0.1", "alice");
        Assert.False(limits.MayTryLogin("10.0.0.1", "alice", out var wait));
        Assert.True(wait > TimeSpan.Zero);
        // Elsewhere, alice may still log in (a guesser cannot lock her out), and so may bob at the same address,
        // until the address as a whole has 10 times as many refusals.
        Assert.True(limits.MayTryLogin("10.0.0.9", "alice", out _));
        Assert.True(limits.MayTryLogin("10.0.0.1", "bob", out _));
        for (var i = 0; i < 18; i++)
        {
            limits.LoginFailed("10.0.0.1", "user" + i);
        }
        Assert.False(limits.MayTryLogin("10.0.0.1", "carol", out _));
        var clock = Stopwatch.StartNew();
        while (!limits.MayTryLogin("10.0.0.1", "alice", out _))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "no refill within 10 s at 5 per second");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public void A_caller_at_its_upload_cap_is_refused_until_one_of_its_uploads_ends_and_other_callers_are_not()
    {
        using var limits = new RateLimits(new RateLimitOptions { ConcurrentUploads = 2 }, new TrustedProxyList([]));
        Assert.True(limits.LimitsRequests);
        var first = limits.TryStartUpload("id:ci");
        var second = limits.TryStartUpload("id:ci");
        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(limits.TryStartUpload("id:ci"));
        Assert.NotNull(limits.TryStartUpload("id:other"));
        first!.Dispose();
        Assert.NotNull(limits.TryStartUpload("id:ci"));
    }

    [Fact]
    public void Request_classes_and_settings_are_what_operators_configure()
    {
        Assert.Equal(RequestClass.ManifestReads, RateLimits.Classify(Wharf.Gateway.Distribution.Route.Parse("a/b/manifests/v1"), "GET"));
        Assert.Equal(RequestClass.BlobReads, RateLimits.Classify(Wharf.Gateway.Distribution.Route.Parse("a/blobs/sha256:00"), "HEAD"));
        Assert.Equal(RequestClass.Writes, RateLimits.Classify(Wharf.Gateway.Distribution.Route.Parse("a/manifests/v1"), "PUT"));
        Assert.Equal(RequestClass.Listings, RateLimits.Classify(Wharf.Gateway.Distribution.Route.Parse("a/tags/list"), "GET"));
        Assert.NotEmpty(new RateLimitOptions { Writes = new RateClass { PerSecond = 1, Burst = 0 } }.Validate());
        Assert.NotEmpty(new RateLimitOptions { ConcurrentUploads = -1 }.Validate());
        Assert.Empty(new RateLimitOptions().Validate());
        using var none = new RateLimits(new RateLimitOptions(), new TrustedProxyList([]));
        Assert.False(none.LimitsRequests);
        Assert.True(none.TryTake(RequestClass.ManifestReads, "x", out _));
    }
}
