using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Runtime;
using Wharf.Membership;
using Wharf.Membership.Consul;

namespace Wharf.Tests.Membership;

/// <summary>
/// The Consul test peer checked against the behaviour Consul's API documentation describes, and
/// <see cref="ConsulClient"/> checked against the peer: KV, check-and-set, transactions, blocking queries, ACL tokens,
/// agent services, and failing fast when Consul is not there.
/// </summary>
public sealed class ConsulPeerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_kv_answers_reads_and_writes_as_documented()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var http = new HttpClient { BaseAddress = peer.Address };

        var missing = await http.GetAsync("v1/kv/app/a", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.True(missing.Headers.Contains("X-Consul-Index"));

        var put = await http.PutAsync("v1/kv/app/a", new StringContent("hello"), Ct);
        Assert.Equal("true", await put.Content.ReadAsStringAsync(Ct));

        var read = await http.GetAsync("v1/kv/app/a", Ct);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        var pair = Assert.Single(JsonDocument.Parse(await read.Content.ReadAsStringAsync(Ct)).RootElement.EnumerateArray());
        Assert.Equal("app/a", pair.GetProperty("Key").GetString());
        Assert.Equal(Convert.ToBase64String("hello"u8), pair.GetProperty("Value").GetString());
        var modify = pair.GetProperty("ModifyIndex").GetUInt64();
        Assert.Equal(modify, pair.GetProperty("CreateIndex").GetUInt64());
        Assert.Equal(0, pair.GetProperty("Flags").GetInt32());
        Assert.Equal(0, pair.GetProperty("LockIndex").GetInt32());
        Assert.Equal(modify.ToString(), read.Headers.GetValues("X-Consul-Index").Single());

        var empty = await http.GetAsync("v1/kv/nothing/?recurse", Ct);
        Assert.Equal(HttpStatusCode.NotFound, empty.StatusCode);
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_check_and_set_creates_only_at_0_and_writes_only_at_the_current_index()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);

        Assert.True(await consul.PutAsync("k", "1"u8.ToArray(), cas: 0, Ct));
        Assert.False(await consul.PutAsync("k", "2"u8.ToArray(), cas: 0, Ct));
        var first = (await consul.GetAsync("k", Ct))!;
        Assert.False(await consul.PutAsync("k", "2"u8.ToArray(), cas: first.ModifyIndex + 5, Ct));
        Assert.True(await consul.PutAsync("k", "2"u8.ToArray(), cas: first.ModifyIndex, Ct));

        var second = (await consul.GetAsync("k", Ct))!;
        Assert.Equal("2", Encoding.UTF8.GetString(second.Value!));
        Assert.Equal(first.CreateIndex, second.CreateIndex);
        Assert.True(second.ModifyIndex > first.ModifyIndex);
        Assert.False(await consul.PutAsync("k", "3"u8.ToArray(), cas: first.ModifyIndex, Ct));
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_transaction_applies_all_or_nothing_and_answers_409_with_errors()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);
        using var http = new HttpClient { BaseAddress = peer.Address };

        var refused = await http.PutAsync("v1/txn", new StringContent(
            """[{"KV":{"Verb":"set","Key":"x","Value":"eA=="}},{"KV":{"Verb":"cas","Key":"y","Value":"eQ==","Index":99}}]"""), Ct);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var error = Assert.Single(JsonDocument.Parse(await refused.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("Errors").EnumerateArray());
        Assert.Equal(1, error.GetProperty("OpIndex").GetInt32());
        Assert.Contains("index is stale", error.GetProperty("What").GetString());
        Assert.Null(await consul.GetAsync("x", Ct));

        var committed = await consul.TxnAsync([
            ConsulTxnOp.Kv(ConsulKvVerb.Set, "x", "x"u8.ToArray()),
            ConsulTxnOp.Kv(ConsulKvVerb.Cas, "y", "y"u8.ToArray(), 0),
        ], Ct);
        Assert.True(committed.Committed);
        Assert.Equal(2, committed.Results.Count);
        Assert.Equal(committed.Results[0].ModifyIndex, committed.Results[1].ModifyIndex);

        var failed = await consul.TxnAsync([
            ConsulTxnOp.Kv(ConsulKvVerb.Delete, "x"),
            ConsulTxnOp.Kv(ConsulKvVerb.Get, "missing"),
        ], Ct);
        Assert.False(failed.Committed);
        Assert.Equal(1, Assert.Single(failed.Errors).OpIndex);
        Assert.NotNull(await consul.GetAsync("x", Ct));
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_blocking_query_returns_on_a_change_or_when_the_wait_elapses()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);
        await consul.PutAsync("watch/a", "1"u8.ToArray(), cancellationToken: Ct);
        var start = await consul.ListAsync("watch/", cancellationToken: Ct);

        var clock = Stopwatch.StartNew();
        var blocked = consul.ListAsync("watch/", start.Index, TimeSpan.FromSeconds(10), Ct);
        await Task.Delay(200, Ct);
        Assert.False(blocked.IsCompleted);
        await consul.PutAsync("watch/b", "2"u8.ToArray(), cancellationToken: Ct);
        var changed = await blocked;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        Assert.True(changed.Index > start.Index);
        Assert.Equal(2, changed.Pairs.Count);

        // A write elsewhere does not wake a query on this prefix; the wait elapses and the index is unchanged.
        clock.Restart();
        var unchanged = consul.ListAsync("watch/", changed.Index, TimeSpan.FromMilliseconds(400), Ct);
        await consul.PutAsync("other/key", "3"u8.ToArray(), cancellationToken: Ct);
        var idle = await unchanged;
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(350));
        Assert.Equal(changed.Index, idle.Index);
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_index_going_backwards_resets_the_wait_index_to_zero()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);
        for (var i = 0; i < 10; i++)
        {
            await consul.PutAsync("restore/k" + i, [(byte)i], cancellationToken: Ct);
        }
        var snapshot = peer.TakeSnapshot();
        for (var i = 10; i < 20; i++)
        {
            await consul.PutAsync("restore/k" + i, [(byte)i], cancellationToken: Ct);
        }
        var before = await consul.ListAsync("restore/", cancellationToken: Ct);

        peer.RestoreSnapshot(snapshot);
        // A query that began after the restore with the old, higher index waits out its time (nothing wakes it).
        var answered = await consul.ListAsync("restore/", before.Index, TimeSpan.FromMilliseconds(300), Ct);
        Assert.True(answered.Index < before.Index);

        var next = ConsulClient.NextWaitIndex(before.Index, answered.Index);
        Assert.Equal(0UL, next);
        var clock = Stopwatch.StartNew();
        var fresh = await consul.ListAsync("restore/", next, TimeSpan.FromSeconds(10), Ct);
        // Answered at once, not after the 10 s wait (loose: a loaded machine can take seconds to run anything).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(10, fresh.Pairs.Count);
        Assert.Equal(1UL, ConsulClient.NextWaitIndex(0, 0));
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_watch_yields_changes_and_holds_one_request_open_between_them()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);
        await consul.PutAsync("feed/a", "1"u8.ToArray(), cancellationToken: Ct);
        var snapshot = peer.TakeSnapshot();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var watch = consul.WatchAsync("feed/", TimeSpan.FromSeconds(5), stop.Token).GetAsyncEnumerator(stop.Token);

        Assert.True(await watch.MoveNextAsync());
        Assert.Single(watch.Current.Pairs);
        var before = peer.Requests;
        var next = watch.MoveNextAsync().AsTask();
        await Task.Delay(500, Ct);
        Assert.False(next.IsCompleted);
        Assert.Equal(before + 1, peer.Requests);

        await consul.PutAsync("feed/b", "2"u8.ToArray(), cancellationToken: Ct);
        Assert.True(await next);
        Assert.Equal(2, watch.Current.Pairs.Count);

        // A restore takes the index back and wakes blocked queries: the watch starts over and reports the restored keys.
        next = watch.MoveNextAsync().AsTask();
        await Task.Delay(100, Ct);
        var clock = Stopwatch.StartNew();
        peer.RestoreSnapshot(snapshot);
        Assert.True(await next);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Single(watch.Current.Pairs);
        await stop.CancelAsync();
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_refuses_a_bad_token_and_the_membership_table_says_so()
    {
        await using var peer = await ConsulPeer.StartAsync(token: "right-token");
        using var host = SiloHost(new MembershipOptions { Provider = "Consul", Address = peer.Address.ToString(), Token = "wrong-token" });
        var table = host.Services.GetRequiredService<IMembershipTable>();

        var e = await Assert.ThrowsAsync<ConsulException>(() => table.InitializeMembershipTableAsync(true, Ct));

        Assert.Equal(HttpStatusCode.Forbidden, e.Status);
        Assert.Contains("ACL token", e.Message);
        Assert.Contains(peer.Address.ToString(), e.Message);
        using var anonymous = new ConsulClient(peer.Address);
        Assert.Equal(HttpStatusCode.Forbidden, (await Assert.ThrowsAsync<ConsulException>(() => anonymous.GetAsync("k", Ct))).Status);
        using var good = new ConsulClient(peer.Address, "right-token");
        Assert.Null(await good.GetAsync("k", Ct));
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_registers_and_deregisters_a_service_with_its_http_check()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var consul = new ConsulClient(peer.Address);

        await consul.RegisterServiceAsync(new ConsulAgentService
        {
            Id = "wharf-silo-n1",
            Name = "wharf-silo",
            Address = "127.0.0.1",
            Port = 7001,
            Tags = ["silo"],
            Check = new ConsulAgentCheck { Http = "http://127.0.0.1:7001/healthz", Interval = "5s", DeregisterCriticalServiceAfter = "1m" },
        }, Ct);

        var service = Assert.Single(peer.Services).Value;
        Assert.Equal("wharf-silo", service.Name);
        Assert.Equal(7001, service.Port);
        Assert.Equal("http://127.0.0.1:7001/healthz", service.Check!.Http);

        await consul.DeregisterServiceAsync("wharf-silo-n1", Ct);
        Assert.Empty(peer.Services);
        var unknown = await Assert.ThrowsAsync<ConsulException>(() => consul.DeregisterServiceAsync("wharf-silo-n1", Ct));
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
    }

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_holds_the_table_on_the_keys_of_orleans_consul_provider()
    {
        await using var peer = await ConsulPeer.StartAsync();
        using var host = SiloHost(new MembershipOptions { Provider = "Consul", Address = peer.Address.ToString() }, "layout");
        var table = host.Services.GetRequiredService<IMembershipTable>();
        var silo = SiloAddress.New(IPAddress.Loopback, 11111, 42);
        var entry = new MembershipEntry
        {
            SiloAddress = silo,
            HostName = "h",
            SiloName = "s",
            RoleName = "",
            Status = SiloStatus.Active,
            ProxyPort = 30000,
            StartTime = DateTime.UtcNow,
            IAmAliveTime = DateTime.UtcNow,
        };
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));

        using var consul = new ConsulClient(peer.Address);
        var keys = (await consul.ListAsync("orleans/layout/", cancellationToken: Ct)).Pairs.Select(p => p.Key).Order().ToList();
        Assert.Equal(["orleans/layout/" + silo.ToParsableString(), "orleans/layout/" + silo.ToParsableString() + "/iamalive", "orleans/layout/version"], keys);
        var row = JsonDocument.Parse((await consul.GetAsync("orleans/layout/" + silo.ToParsableString(), Ct))!.Value).RootElement;
        Assert.Equal((int)SiloStatus.Active, row.GetProperty("Status").GetInt32());
        Assert.Equal(30000, row.GetProperty("ProxyPort").GetInt32());
        Assert.Equal("h", row.GetProperty("Hostname").GetString());
        Assert.Equal("1", Encoding.UTF8.GetString((await consul.GetAsync("orleans/layout/version", Ct))!.Value!));
    }

    [Fact(Timeout = 20000)]
    public async Task Consul_client_pointed_at_an_unreachable_address_fails_fast_with_a_clear_exception()
    {
        var address = new Uri($"http://127.0.0.1:{RedisServer.FreePort()}/");
        using var host = SiloHost(new MembershipOptions { Provider = "Consul", Address = address.ToString() });
        var table = host.Services.GetRequiredService<IMembershipTable>();

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ConsulUnreachableException>(() => table.InitializeMembershipTableAsync(true, Ct));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Contains("unreachable", e.Message);
        Assert.Contains(address.ToString(), e.Message);
    }

    [Fact(Timeout = 20000)]
    public async Task Consul_client_facing_a_server_that_never_answers_gives_up_at_its_deadline()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var address = new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/");
        using var consul = new ConsulClient(address, requestTimeout: TimeSpan.FromSeconds(1));

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ConsulUnreachableException>(() => consul.GetAsync("k", Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromSeconds(5));
        Assert.Contains("did not answer", e.Message);
    }

    internal static IHost SiloHost(MembershipOptions options, string clusterId = "c")
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.UseOrleans(s => MembershipSetup.ConfigureSilo(s, options, clusterId, RedisServer.FreePort(), RedisServer.FreePort()));
        return builder.Build();
    }
}

public sealed class ConsulServiceRegistrationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20000)]
    public async Task ConsulPeer_sees_a_host_register_at_start_with_its_health_check_and_deregister_at_stop()
    {
        await using var peer = await ConsulPeer.StartAsync(token: "t");
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddLogging();
        builder.Services.AddConsulServiceRegistration(o =>
        {
            (o.Address, o.Token, o.ServiceName, o.ServiceId, o.Port) = (peer.Address, "t", "wharf-gateway", "wharf-gateway-1", 5055);
            o.HealthUrl = "http://127.0.0.1:5055/healthz";
        });
        using var host = builder.Build();

        await host.StartAsync(Ct);
        var service = Assert.Single(peer.Services);
        Assert.Equal("wharf-gateway-1", service.Key);
        Assert.Equal("http://127.0.0.1:5055/healthz", service.Value.Check!.Http);
        Assert.Equal("10000ms", service.Value.Check.Interval);

        await host.StopAsync(Ct);
        Assert.Empty(peer.Services);
    }
}
