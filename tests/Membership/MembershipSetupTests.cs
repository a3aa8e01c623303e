using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Orleans;
using StackExchange.Redis;
using Wharf.Membership;

namespace Wharf.Tests.Membership;

public sealed class MembershipSetupTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20000)]
    public async Task Settings_are_checked_with_one_line_per_problem()
    {
        await Task.Yield();
        Assert.Empty(new MembershipOptions().Validate());
        Assert.Empty(new MembershipOptions { Provider = "consul", Address = "http://127.0.0.1:8500" }.Validate());
        Assert.Empty(new MembershipOptions { Provider = "Redis", Address = "127.0.0.1:6379", Token = "pw" }.Validate());
        Assert.Contains("Consul, Redis or Localhost", Assert.Single(new MembershipOptions { Provider = "Etcd" }.Validate()));
        Assert.Contains("Wharf:Membership:Address", Assert.Single(new MembershipOptions { Provider = "Consul", Address = "127.0.0.1:8500" }.Validate()));
        Assert.Contains("Wharf:Membership:Address", Assert.Single(new MembershipOptions { Provider = "Redis" }.Validate()));
        Assert.Throws<ArgumentException>(() => ConsulPeerTests.SiloHost(new MembershipOptions { Provider = "Redis" }));
    }

    [Fact(Timeout = 20000)]
    public async Task Redis_pointed_at_an_unreachable_address_fails_fast_with_a_clear_exception()
    {
        using var host = ConsulPeerTests.SiloHost(new MembershipOptions { Provider = "Redis", Address = $"127.0.0.1:{RedisServer.FreePort()}" });
        var table = host.Services.GetRequiredService<IMembershipTable>();

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RedisConnectionException>(() => table.InitializeMembershipTableAsync(true, Ct));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"took {clock.Elapsed}");
        Assert.Contains("not possible to connect", e.Message);
    }

    [Fact(Timeout = 20000)]
    public async Task Redis_with_a_wrong_password_is_refused_with_a_clear_exception()
    {
        await using var redis = await RedisServer.StartAsync("right-password");
        using var host = ConsulPeerTests.SiloHost(new MembershipOptions { Provider = "Redis", Address = redis.Address, Token = "wrong-password" });
        var table = host.Services.GetRequiredService<IMembershipTable>();

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RedisConnectionException>(() => table.InitializeMembershipTableAsync(true, Ct));

        // StackExchange.Redis sometimes reports a refused AUTH at once and sometimes only at its 5 s connect timeout.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"took {clock.Elapsed}");
        Assert.Contains("authentication failure", e.Message);
    }
}
