using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo.Replication;

namespace Wharf.Tests.Unit.Replication;

/// <summary>The owner side of "writes carry the view epoch" over a real topology feed's current view.</summary>
public sealed class StaleViewCheckTests
{
    private static PlacementNode Node(string id, NodeState state = NodeState.Active) => new(id, state, "", 1, $"http://{id}:1", null, $"{id}:2");

    [Fact]
    public void A_request_of_an_older_view_is_stale_only_where_the_newer_view_took_the_log_away_from_this_node()
    {
        var feed = new TopologyFeed(new PlacementViewStore(null!, "test"), NullLogger<TopologyFeed>.Instance);
        // Epoch 5: three nodes own everything (R = 3). Epoch 6: five nodes, so some logs left some nodes.
        feed.Publish(new PlacementView(6, [Node("a"), Node("b"), Node("c"), Node("d"), Node("e")], Replicas: 3, WriteQuorum: 2));
        var view = feed.Current;
        var log = Enumerable.Range(0, 1000).Select(i => $"r/repo{i}")
            .First(l => !RendezvousPlacement.Owners(view, ReplicatedLogs.ShardOfLog(l)!.Value, 3).Any(n => n.NodeId == "a"));
        var kept = Enumerable.Range(0, 1000).Select(i => $"r/repo{i}")
            .First(l => RendezvousPlacement.Owners(view, ReplicatedLogs.ShardOfLog(l)!.Value, 3).Any(n => n.NodeId == "a"));
        var check = ReplicatedLogs.StaleViewCheck(feed, "a");

        Assert.True(check(log, 5));   // a leader of epoch 5 still counts on "a", which no longer owns the log
        Assert.False(check(kept, 5)); // "a" still owns this one
        Assert.False(check(log, 6));  // the same view
        Assert.False(check(log, 7));  // a newer view than this node knows: not for this node to judge
        Assert.False(check(log, 0));  // a request that names no epoch
    }
}
