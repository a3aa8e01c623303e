using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Placement;
using Wharf.Membership;
using Wharf.Membership.Topology;

namespace Wharf.Tests.Membership;

/// <summary>
/// Three silos' coordinators on one real redis-server, each with its own connection (as separate processes would
/// have), running their own loops every 100 ms; leases of 1 s renewed by the test for the nodes that "run".
/// </summary>
public sealed class CoordinatorOnRedisTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);

    private sealed class Silo(string id, ICasStore store, PlacementCoordinator coordinator, NodeLease lease)
    {
        public string Id => id;

        public ICasStore Store => store;

        public PlacementCoordinator Coordinator => coordinator;

        public NodeLease Lease => lease;

        public bool Renewing { get; set; } = true;
    }

    private static async Task<(List<Silo> Silos, PlacementViewStore Views, ConcurrentQueue<string> Log, MembershipBackendHealth[] Health)> StartAsync(
        RedisServer redis, string cluster, params string[] ids)
    {
        var options = new MembershipOptions { Provider = MembershipOptions.Redis, Address = redis.Address };
        var log = new ConcurrentQueue<string>();
        var views = new PlacementViewStore(TopologySetup.CreateCasStore(options, cluster), cluster);
        await views.UpdateAsync(_ => new PlacementView(0, [.. ids.Select(id => new PlacementNode(id, NodeState.Active, "", 1, $"http://{id}:1"))], 2, 2), Ct);
        var silos = new List<Silo>();
        var health = new List<MembershipBackendHealth>();
        foreach (var id in ids)
        {
            var store = TopologySetup.CreateCasStore(options, cluster);
            var own = new PlacementViewStore(store, cluster);
            var lease = new NodeLease(store, cluster, id, LeaseTtl);
            await lease.AcquireAsync(Ct);
            var h = new MembershipBackendHealth();
            health.Add(h);
            var coordinator = new PlacementCoordinator(
                store, own, new TopologyFeed(own, NullLogger<TopologyFeed>.Instance), new TransitionReports(store, cluster), h, cluster, id,
                new CoordinatorSettings(TimeSpan.FromMilliseconds(100), Grace), new ListLogger(id, log));
            silos.Add(new Silo(id, store, coordinator, lease));
        }
        foreach (var silo in silos)
        {
            await silo.Coordinator.StartAsync(Ct);
        }
        return (silos, views, log, [.. health]);
    }

    /// <summary>What NodeRegistration does: renew every 250 ms (a quarter of the TTL) while the node "runs".</summary>
    private static async Task RenewAsync(List<Silo> silos, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var silo in silos.Where(s => s.Renewing))
            {
                await silo.Lease.AcquireAsync(stop);
            }
            await Task.Delay(250, stop);
        }
    }

    private static async Task<PlacementView> EventuallyAsync(PlacementViewStore views, Func<PlacementView, bool> done, TimeSpan within, Func<string> what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < within)
        {
            var view = await views.ReadAsync(Ct);
            if (done(view))
            {
                return view;
            }
            await Task.Delay(50, Ct);
        }
        throw new Xunit.Sdk.XunitException($"not within {within.TotalSeconds} s: {what()}");
    }

    [Fact(Timeout = 60000)]
    public async Task Exactly_one_coordinator_acts_a_lapsed_node_is_down_once_then_removed_after_the_grace()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "c" + Guid.NewGuid().ToString("N")[..8];
        var (silos, views, log, _) = await StartAsync(redis, cluster, "node-a", "node-b", "node-c");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var renewing = Task.Run(() => RenewAsync(silos, stop.Token), Ct);
        try
        {
            // Everyone ticks; only node-a (the smallest live Active id) coordinates.
            await Task.Delay(500, Ct);
            Assert.Equal(["node-a"], silos.Where(s => s.Coordinator.IsCoordinator).Select(s => s.Id));
            var start = (await views.ReadAsync(Ct)).Epoch;

            // node-c dies: stops renewing and ticking.
            silos[2].Renewing = false;
            await silos[2].Coordinator.StopAsync(Ct);
            var down = await EventuallyAsync(views, v => v.Find("node-c")!.State == NodeState.Down, TimeSpan.FromSeconds(15), () => string.Join("\n", log));
            Assert.Equal(start + 1, down.Epoch);
            Assert.False(down.InTransition);

            var removed = await EventuallyAsync(views, v => v.Find("node-c")!.State == NodeState.Removed, TimeSpan.FromSeconds(15), () => string.Join("\n", log));
            Assert.Equal(start + 2, removed.Epoch);
            Assert.True(removed.InTransition);
            Assert.Equal(start + 2, removed.TransitionEpoch);
            Assert.True(DateTimeOffset.UtcNow - down.Find("node-c")!.DownSince >= Grace);

            // Nobody reports synced, so the transition stays open and nothing else is written.
            await Task.Delay(1000, Ct);
            Assert.Equal(start + 2, (await views.ReadAsync(Ct)).Epoch);
            Assert.Single(log, l => l.Contains("node node-c Active → Down", StringComparison.Ordinal));
            Assert.Single(log, l => l.Contains("node node-c Down → Removed", StringComparison.Ordinal));
            Assert.All(log.Where(l => l.Contains(" → ", StringComparison.Ordinal) && l.Contains("node node-c", StringComparison.Ordinal)), l => Assert.StartsWith("node-a:", l));

            // The gainers report synced: the transition ends, once.
            foreach (var gainer in Transitions.Gainers(removed))
            {
                await new TransitionReports(silos[0].Store, cluster).ReportSyncedAsync(removed.TransitionEpoch, gainer, Ct);
            }
            var ended = await EventuallyAsync(views, v => !v.InTransition, TimeSpan.FromSeconds(15), () => string.Join("\n", log));
            Assert.Equal(start + 3, ended.Epoch);

            // node-a dies too: node-b takes over and marks it Down.
            silos[0].Renewing = false;
            await silos[0].Coordinator.StopAsync(Ct);
            await EventuallyAsync(views, v => v.Find("node-a")!.State == NodeState.Down, TimeSpan.FromSeconds(15), () => string.Join("\n", log));
            Assert.True(silos[1].Coordinator.IsCoordinator);
            Assert.Single(log, l => l.StartsWith("node-b:", StringComparison.Ordinal) && l.Contains("node node-a Active → Down", StringComparison.Ordinal));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(renewing, Task.Delay(5000, Ct));
            foreach (var silo in silos)
            {
                await silo.Coordinator.StopAsync(CancellationToken.None);
            }
        }
    }

    [Fact(Timeout = 60000)]
    public async Task An_unreachable_backend_keeps_the_last_view_warns_once_and_says_so()
    {
        var redis = await RedisServer.StartAsync();
        var cluster = "c" + Guid.NewGuid().ToString("N")[..8];
        var (silos, views, log, health) = await StartAsync(redis, cluster, "node-a");
        try
        {
            await Task.Delay(300, Ct);
            Assert.True(health[0].IsUp);
            await redis.DisposeAsync();
            var clock = Stopwatch.StartNew();
            while (health[0].IsUp && clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(100, Ct);
            }
            Assert.False(health[0].IsUp);
            Assert.NotNull(health[0].Outage);
            // Several more failed looks, one warning.
            await Task.Delay(1500, Ct);
            Assert.Single(log, l => l.Contains("membership backend unreachable", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var silo in silos)
            {
                await silo.Coordinator.StopAsync(CancellationToken.None);
            }
            await redis.DisposeAsync();
        }
    }

    /// <summary>Keeps "{silo}: {message}" lines (Information and up) for the test to count.</summary>
    private sealed class ListLogger(string silo, ConcurrentQueue<string> lines) : ILogger<PlacementCoordinator>
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                lines.Enqueue($"{silo}: {formatter(state, exception)}");
            }
        }
    }
}
