using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;

namespace Wharf.Tests.Unit.Placement;

public class RendezvousPlacementTests
{
    private static PlacementNode Node(string id, string zone = "", double weight = 1, NodeState state = NodeState.Active) =>
        new(id, state, zone, weight, $"http://{id}:1");

    private static PlacementView View(params PlacementNode[] nodes) => new(1, nodes);

    [Fact]
    public void Owners_are_R_distinct_nodes_and_the_same_in_every_call()
    {
        var view = View(Node("a"), Node("b"), Node("c"), Node("d"), Node("e"));
        for (var shard = 0; shard < 500; shard++)
        {
            var owners = RendezvousPlacement.Owners(view, shard, 3);
            Assert.Equal(3, owners.Select(o => o.NodeId).Distinct().Count());
            Assert.Equal(owners, RendezvousPlacement.Owners(view with { Epoch = 2 }, shard, 3));
        }
    }

    [Fact]
    public void Owners_spread_across_zones_when_zones_are_set()
    {
        var view = View(Node("a1", "a"), Node("a2", "a"), Node("a3", "a"), Node("b1", "b"), Node("c1", "c"));
        for (var s = 0; s < 500; s++)
        {
            var zones = RendezvousPlacement.Owners(view, s, 3).Select(n => n.Zone).ToHashSet();
            Assert.Equal(3, zones.Count);
        }
    }

    [Fact]
    public void A_down_node_keeps_its_shards_and_a_removed_one_does_not()
    {
        var up = View(Node("a"), Node("b"), Node("c"), Node("d"));
        var down = View(Node("a"), Node("b", state: NodeState.Down), Node("c"), Node("d"));
        var removed = View(Node("a"), Node("b", state: NodeState.Removed), Node("c"), Node("d"));
        for (var s = 0; s < 300; s++)
        {
            Assert.Equal(RendezvousPlacement.Owners(up, s, 2).Select(n => n.NodeId), RendezvousPlacement.Owners(down, s, 2).Select(n => n.NodeId));
            Assert.DoesNotContain(RendezvousPlacement.Owners(removed, s, 2), n => n.NodeId == "b");
        }
    }

    [Fact]
    public void Fewer_nodes_than_R_gives_every_node()
    {
        Assert.Equal(2, RendezvousPlacement.Owners(View(Node("a"), Node("b")), 7, 3).Count);
        Assert.Empty(RendezvousPlacement.Owners(PlacementView.Empty, 7, 3));
    }

    [Fact]
    public void Shards_cover_the_fixed_range()
    {
        Assert.Equal(0xabcd, Shards.OfDigest(Digest.Parse("sha256:abcd" + new string('0', 60))));
        var seen = new HashSet<int>();
        for (var i = 0; i < 1000; i++)
        {
            var s = Shards.OfRepository("repo" + i);
            Assert.InRange(s, 0, Shards.Count - 1);
            seen.Add(s);
        }
        Assert.True(seen.Count > 980);
        Assert.Equal(Shards.OfRepository("library/ubuntu"), Shards.OfRepository("library/ubuntu"));
    }
}
