using System.Text;
using Wharf.Contracts.Placement;
using Wharf.Membership;
using Wharf.Membership.Topology;

namespace Wharf.Tests.Membership;

/// <summary>The compare-and-set store, the placement view and node-id leases on every backend.</summary>
public abstract class TopologySuite
{
    protected abstract ICasStore Store { get; }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Cluster() => "c" + Guid.NewGuid().ToString("N")[..8];

    [Fact(Timeout = 20000)]
    public async Task A_key_is_created_once_and_written_only_at_its_current_version()
    {
        var key = $"wharf/{Cluster()}/k";
        Assert.Equal(0UL, (await Store.GetAsync(key, Ct)).Version);
        Assert.True(await Store.TryPutAsync(key, "a"u8.ToArray(), 0, Ct));
        Assert.False(await Store.TryPutAsync(key, "b"u8.ToArray(), 0, Ct));
        var first = await Store.GetAsync(key, Ct);
        Assert.Equal("a", Encoding.UTF8.GetString(first.Value!));
        Assert.True(await Store.TryPutAsync(key, "c"u8.ToArray(), first.Version, Ct));
        Assert.False(await Store.TryPutAsync(key, "d"u8.ToArray(), first.Version, Ct));
        var second = await Store.GetAsync(key, Ct);
        Assert.Equal("c", Encoding.UTF8.GetString(second.Value!));
        Assert.True(second.Version > first.Version);
        Assert.False(await Store.TryDeleteAsync(key, first.Version, Ct));
        Assert.True(await Store.TryDeleteAsync(key, second.Version, Ct));
        Assert.Null((await Store.GetAsync(key, Ct)).Value);
    }

    [Fact(Timeout = 20000)]
    public async Task Racing_view_changes_all_land_and_the_epoch_counts_them()
    {
        var views = new PlacementViewStore(Store, Cluster());
        var nodes = Enumerable.Range(0, 8).Select(i => $"n{i}").ToArray();
        await Task.WhenAll(nodes.Select(id => Task.Run(() => views.UpdateAsync(
            v => v with { Nodes = [.. v.Nodes, new PlacementNode(id, NodeState.Active, "", 1, $"http://{id}")] }, Ct))));
        var view = await views.ReadAsync(Ct);
        Assert.Equal(nodes.Order(), view.Nodes.Select(n => n.NodeId).Order());
        Assert.Equal(8, view.Epoch);
        // A change that changes nothing leaves the epoch alone.
        Assert.Equal(8, (await views.UpdateAsync(v => v, Ct)).Epoch);
    }

    [Fact(Timeout = 20000)]
    public async Task A_node_id_held_by_a_live_process_is_refused_and_free_once_released()
    {
        var cluster = Cluster();
        var first = new NodeLease(Store, cluster, "node-a", TimeSpan.FromMinutes(1));
        var second = new NodeLease(Store, cluster, "node-a", TimeSpan.FromMinutes(1));
        await first.AcquireAsync(Ct);
        await first.AcquireAsync(Ct); // renewing is fine
        await Assert.ThrowsAsync<NodeIdInUseException>(() => second.AcquireAsync(Ct));
        await first.ReleaseAsync(Ct);
        await second.AcquireAsync(Ct);
    }

    [Fact(Timeout = 20000)]
    public async Task An_expired_lease_can_be_taken_over()
    {
        var cluster = Cluster();
        var dead = new NodeLease(Store, cluster, "node-b", TimeSpan.FromMilliseconds(200));
        await dead.AcquireAsync(Ct);
        var next = new NodeLease(Store, cluster, "node-b", TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<NodeIdInUseException>(() => next.AcquireAsync(Ct));
        await Task.Delay(400, Ct);
        await next.AcquireAsync(Ct);
    }

    [Fact(Timeout = 20000)]
    public async Task Nodes_joining_a_formed_cluster_own_nothing_and_known_nodes_keep_their_state()
    {
        var views = new PlacementViewStore(Store, Cluster());
        NodeAnnouncement Node(string id) => new(id, "", 1, $"http://{id}:1", $"127.0.0.1:{id.Length}", BootstrapExpect: 2);
        await views.UpdateAsync(v => NodeRegistration.Join(v, Node("a")), Ct);
        await views.UpdateAsync(v => NodeRegistration.Join(v, Node("b")), Ct);
        var view = await views.UpdateAsync(v => NodeRegistration.Join(v, Node("c")), Ct);
        Assert.Equal([NodeState.Active, NodeState.Active, NodeState.Joining], view.Nodes.Select(n => n.State));
        var epoch = view.Epoch;
        // A restart of a known node with the same endpoints moves nothing.
        Assert.Equal(epoch, (await views.UpdateAsync(v => NodeRegistration.Join(v, Node("a")), Ct)).Epoch);
        for (var shard = 0; shard < 200; shard++)
        {
            Assert.DoesNotContain(RendezvousPlacement.Owners(view, shard, 2), n => n.NodeId == "c");
        }
    }
}

public sealed class LocalTopologyTests : TopologySuite
{
    protected override ICasStore Store { get; } = new LocalCasStore();
}

public sealed class ConsulPeerTopologyTests(ConsulPeerBackend backend) : TopologySuite, IClassFixture<ConsulPeerBackend>
{
    protected override ICasStore Store { get; } = TopologySetup.CreateCasStore(backend.Options, "unused");
}

public sealed class RedisTopologyTests(RedisBackend backend) : TopologySuite, IClassFixture<RedisBackend>
{
    protected override ICasStore Store { get; } = TopologySetup.CreateCasStore(backend.Options, "unused");
}
