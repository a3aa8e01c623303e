using System.Net;
using Wharf.Contracts.Placement;
using Wharf.Membership;
using Wharf.Membership.Topology;
using Wharf.Silo;

namespace Wharf.Tests.Membership;

/// <summary>
/// A silo whose data folder holds the retired marker (it was drained and Removed) against a real redis-server: it
/// neither takes its lease nor changes the placement view — it exits 0 with one line, or idles with health up and
/// readiness down — unless Wharf:Node:Rejoin brings it back as Joining. Captures Console.Out, hence the collection.
/// </summary>
[Collection("console")]
public sealed class RetiredSiloTests
{
    private const string NodeId = "retired0node0001";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string[] Args(string data, RedisServer redis, string cluster, int port, params string[] more) =>
    [
        "--urls", $"http://127.0.0.1:{port}",
        "--Wharf:Role=Silo",
        $"--Wharf:ClusterId={cluster}",
        $"--Wharf:DataPath={data}",
        "--Wharf:Membership:Provider=Redis",
        $"--Wharf:Membership:Address={redis.Address}",
        "--Wharf:Cluster:BootstrapExpect=1",
        "--Wharf:Replication:Factor=1",
        "--Logging:LogLevel:Default=Warning",
        .. more,
    ];

    /// <summary>A data folder of a node that was drained, and a view where it is Removed beside one Active node.</summary>
    private static async Task<(string Data, PlacementViewStore Views, ICasStore Cas, PlacementView Before)> RetiredNodeAsync(RedisServer redis, string cluster, bool marker = true)
    {
        var data = Directory.CreateTempSubdirectory("wharf-retired-silo-").FullName;
        File.WriteAllText(Path.Combine(data, "node-id"), NodeId);
        if (marker)
        {
            new RetiredMarker(NodeId, 2, DateTimeOffset.UtcNow).Write(data);
        }
        var cas = TopologySetup.CreateCasStore(new MembershipOptions { Provider = MembershipOptions.Redis, Address = redis.Address }, cluster);
        var views = new PlacementViewStore(cas, cluster);
        var before = await views.UpdateAsync(_ => new PlacementView(
            1, [new PlacementNode("active0node00001", NodeState.Active, "", 1, "http://127.0.0.1:1"), new PlacementNode(NodeId, NodeState.Removed, "", 1, "http://127.0.0.1:2")], 1, 1), Ct);
        return (data, views, cas, before);
    }

    private static async Task AssertUntouchedAsync(PlacementViewStore views, ICasStore cas, string cluster, PlacementView before)
    {
        var after = await views.ReadAsync(Ct);
        Assert.Equal(before.Epoch, after.Epoch);
        Assert.Equal(NodeState.Removed, after.Find(NodeId)!.State);
        Assert.Null(await NodeLease.ReadExpiryAsync(cas, cluster, NodeId, Ct));
    }

    [Fact(Timeout = 30000)]
    public async Task A_retired_silo_exits_0_with_one_line_without_taking_its_lease_or_changing_the_view()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "r" + Guid.NewGuid().ToString("N")[..8];
        var (data, views, cas, before) = await RetiredNodeAsync(redis, cluster);
        var original = Console.Out;
        var output = new StringWriter();
        try
        {
            Console.SetOut(output);
            var code = await SiloHost.RunAsync(Args(data, redis, cluster, RedisServer.FreePort()));
            Console.SetOut(original);
            Assert.Equal(0, code);
            var line = Assert.Single(output.ToString().Trim().Split('\n'));
            Assert.Contains($"node {NodeId} is retired", line);
            Assert.Contains("Wharf:Node:Rejoin=true", line);
            await AssertUntouchedAsync(views, cas, cluster, before);
            Assert.NotNull(RetiredMarker.Read(data));
        }
        finally
        {
            Console.SetOut(original);
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>It stopped between reporting drained and the coordinator's removal, so it never wrote its marker.</summary>
    [Fact(Timeout = 30000)]
    public async Task A_silo_drained_and_removed_while_it_was_stopped_is_retired_at_its_next_start()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "r" + Guid.NewGuid().ToString("N")[..8];
        var (data, views, cas, before) = await RetiredNodeAsync(redis, cluster, marker: false);
        await new TransitionReports(cas, cluster).ReportDrainedAsync(NodeId, Ct);
        var original = Console.Out;
        var output = new StringWriter();
        try
        {
            Console.SetOut(output);
            var code = await SiloHost.RunAsync(Args(data, redis, cluster, RedisServer.FreePort()));
            Console.SetOut(original);
            Assert.Equal(0, code);
            Assert.Contains($"node {NodeId} is retired", Assert.Single(output.ToString().Trim().Split('\n')));
            Assert.Equal(before.Epoch, RetiredMarker.Read(data)?.Epoch);
            await AssertUntouchedAsync(views, cas, cluster, before);
        }
        finally
        {
            Console.SetOut(original);
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact(Timeout = 60000)]
    public async Task A_silo_removed_without_a_drain_is_not_retired_and_rejoins_as_Joining()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "r" + Guid.NewGuid().ToString("N")[..8];
        var (data, views, _, _) = await RetiredNodeAsync(redis, cluster, marker: false);
        try
        {
            var app = await SiloHost.BuildAsync(Args(data, redis, cluster, RedisServer.FreePort()), null, Ct);
            Assert.NotNull(app);
            await app.StartAsync(Ct);
            Assert.Equal(NodeState.Joining, (await views.ReadAsync(Ct)).Find(NodeId)!.State);
            Assert.Null(RetiredMarker.Read(data));
            await app.StopAsync(Ct);
            await app.DisposeAsync();
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact(Timeout = 30000)]
    public async Task With_ExitWhenRemoved_false_a_retired_silo_idles_alive_and_not_ready_without_joining()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "r" + Guid.NewGuid().ToString("N")[..8];
        var (data, views, cas, before) = await RetiredNodeAsync(redis, cluster);
        var port = RedisServer.FreePort();
        try
        {
            var args = Args(data, redis, cluster, port, "--Wharf:Node:ExitWhenRemoved=false");
            var retired = await Assert.ThrowsAsync<NodeRetiredException>(() => SiloHost.BuildAsync(args, null, Ct));
            await using var app = RetiredHost.Build(args, retired.Options, retired.Marker);
            await app.StartAsync(Ct);
            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
            {
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz", Ct)).StatusCode);
                using var ready = await http.GetAsync("/readyz", Ct);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                Assert.Contains($"node {NodeId} was drained and Removed", await ready.Content.ReadAsStringAsync(Ct));
            }
            await app.StopAsync(Ct);
            await AssertUntouchedAsync(views, cas, cluster, before);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact(Timeout = 60000)]
    public async Task With_Rejoin_a_retired_silo_joins_again_as_Joining_and_its_marker_goes()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "r" + Guid.NewGuid().ToString("N")[..8];
        var (data, views, _, _) = await RetiredNodeAsync(redis, cluster);
        try
        {
            var app = await SiloHost.BuildAsync(Args(data, redis, cluster, RedisServer.FreePort(), "--Wharf:Node:Rejoin=true"), null, Ct);
            Assert.NotNull(app);
            await app.StartAsync(Ct);
            Assert.Equal(NodeState.Joining, (await views.ReadAsync(Ct)).Find(NodeId)!.State);
            Assert.Null(RetiredMarker.Read(data));
            await app.StopAsync(Ct);
            await app.DisposeAsync();
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
