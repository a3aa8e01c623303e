using System.Buffers.Binary;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;

namespace Wharf.Tests.Unit.Placement;

/// <summary>
/// Placement measured at full scale against theory: 1,000,000 keys (half digests, half repository names) over all
/// 65,536 shards. Keys are hashed to shards once (a histogram); owners are ranked once per shard and view. The
/// figures are deterministic (every hash is), so the bands below are not timing-sensitive: they are set a few
/// standard deviations of the shard-sampling noise (≈ 0.3 % of a share) away from the ideal.
/// </summary>
public class PlacementBalanceTests
{
    private const int Keys = 1_000_000;
    private const int R = 3;

    /// <summary>How many of the 1,000,000 keys fall into each shard.</summary>
    private static readonly Lazy<int[]> KeysPerShard = new(() =>
    {
        var counts = new int[Shards.Count];
        Span<byte> seed = stackalloc byte[8];
        for (var i = 0; i < Keys / 2; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(seed, i);
            counts[Shards.OfDigest(Digest.Compute(Digest.Sha256, seed))]++;
            counts[Shards.OfRepository($"team-{i % 997}/service-{i}")]++;
        }
        return counts;
    });

    private static PlacementNode Node(string id, string zone = "", double weight = 1, NodeState state = NodeState.Active) =>
        new(id, state, zone, weight, $"http://{id}:1");

    private static PlacementView View(IEnumerable<PlacementNode> nodes) => new(1, nodes.ToList(), R, 2);

    private static IEnumerable<PlacementNode> Nodes(int n, Func<int, string>? zone = null) =>
        Enumerable.Range(0, n).Select(i => Node($"node-{i:D2}", zone?.Invoke(i) ?? ""));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[][]> Tables = new();

    /// <summary>Owners of every shard, ranked once per shard and view (several tests share a view).</summary>
    private static string[][] OwnerTable(PlacementView view, int replicas = R)
    {
        var key = replicas + "|" + string.Join(";", view.Nodes.Select(x => $"{x.NodeId},{x.State},{x.Zone},{x.Weight}"));
        return Tables.GetOrAdd(key, _ =>
        {
            var table = new string[Shards.Count][];
            Parallel.For(0, Shards.Count, s => table[s] = RendezvousPlacement.Owners(view, s, replicas).Select(n => n.NodeId).ToArray());
            return table;
        });
    }

    /// <summary>Each node's share of the keys' replicas (sums to 1 over the nodes).</summary>
    private static Dictionary<string, double> KeyShares(string[][] owners)
    {
        var keys = KeysPerShard.Value;
        var held = new Dictionary<string, long>(StringComparer.Ordinal);
        long slots = 0;
        for (var s = 0; s < owners.Length; s++)
        {
            foreach (var id in owners[s])
            {
                held[id] = held.GetValueOrDefault(id) + keys[s];
                slots += keys[s];
            }
        }
        return held.ToDictionary(kv => kv.Key, kv => kv.Value / (double)slots, StringComparer.Ordinal);
    }

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Theory]
    [InlineData(5)]
    [InlineData(10)]
    public void A_million_keys_spread_evenly_over_the_nodes(int n)
    {
        var owners = OwnerTable(View(Nodes(n)));
        Assert.All(owners, o => Assert.Equal(R, o.Distinct().Count()));

        // Each node holds R/N of the keys, i.e. 1/N of all replicas; within 3 % of that.
        var shares = KeyShares(owners);
        Report($"N={n}: share × N from {shares.Values.Min() * n:F4} to {shares.Values.Max() * n:F4}");
        Assert.Equal(n, shares.Count);
        Assert.All(shares.Values, share => Assert.InRange(share * n, 0.97, 1.03));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(10)]
    public void A_joining_node_takes_its_share_and_nothing_else_moves(int n)
    {
        var before = OwnerTable(View(Nodes(n)));
        var after = OwnerTable(View(Nodes(n + 1)));
        var newcomer = $"node-{n:D2}";
        long movedSlots = 0, touchedShards = 0;
        for (var s = 0; s < Shards.Count; s++)
        {
            var gained = after[s].Except(before[s]).ToArray();
            var lost = before[s].Except(after[s]).ToArray();
            // A shard gains at most one owner, always the newcomer, and loses exactly as many as it gains.
            Assert.True(gained.Length <= 1 && gained.All(id => id == newcomer), $"shard {s} gained {string.Join(",", gained)}");
            Assert.Equal(gained.Length, lost.Length);
            movedSlots += lost.Length;
            touchedShards += lost.Length > 0 ? 1 : 0;
        }
        Report($"N={n}→{n + 1}: shards touched {touchedShards} (theory {Shards.Count * R / (double)(n + 1):F0}), slots moved {movedSlots}");
        // Theory: the newcomer wins a given shard's top R with probability R/(N+1), taking one slot each time:
        // R/(N+1) of the shards move one replica, 1/(N+1) of all R × 65,536 replica slots.
        Assert.InRange(touchedShards / (Shards.Count * R / (double)(n + 1)), 0.97, 1.03);
        Assert.InRange(movedSlots / (Shards.Count * R / (double)(n + 1)), 0.97, 1.03);

        var share = KeyShares(after)[newcomer];
        Assert.InRange(share * (n + 1), 0.97, 1.03);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(10)]
    public void A_leaving_node_moves_only_the_shards_it_owned(int n)
    {
        var all = Nodes(n).ToList();
        var leaver = all[n / 2].NodeId;
        var before = OwnerTable(View(all));
        var after = OwnerTable(View(all.Select(x => x.NodeId == leaver ? x with { State = NodeState.Removed } : x)));
        long touched = 0;
        for (var s = 0; s < Shards.Count; s++)
        {
            var owned = before[s].Contains(leaver);
            Assert.DoesNotContain(leaver, after[s]);
            if (!owned)
            {
                Assert.Equal(before[s], after[s]);
                continue;
            }
            // The leaver's slot goes to one other node; the remaining owners keep theirs.
            Assert.Single(after[s].Except(before[s]));
            Assert.Equal(before[s].Where(id => id != leaver).OrderBy(id => id, StringComparer.Ordinal),
                after[s].Intersect(before[s]).OrderBy(id => id, StringComparer.Ordinal));
            touched++;
        }
        Report($"N={n}→{n - 1}: shards touched {touched} (theory {Shards.Count * R / (double)n:F0})");
        // It owned R/N of the shards.
        Assert.InRange(touched / (Shards.Count * R / (double)n), 0.97, 1.03);
        // What it held spreads evenly: every survivor again holds 1/(N−1) of the replicas.
        Assert.All(KeyShares(after).Values, share => Assert.InRange(share * (n - 1), 0.97, 1.03));
    }

    [Fact]
    public void A_node_of_weight_two_is_first_owner_twice_as_often()
    {
        // With one replica, weighted rendezvous is exactly proportional: P(win) = w / Σw.
        var view = View(Nodes(5).Select((x, i) => i == 0 ? x with { Weight = 2 } : x));
        var shares = KeyShares(OwnerTable(view, replicas: 1));
        Report($"R=1: weight-2 node's share {shares["node-00"]:F4} (theory {2 / 6.0:F4})");
        Assert.InRange(shares["node-00"] * 6 / 2, 0.97, 1.03);
        Assert.All(shares.Where(kv => kv.Key != "node-00"), kv => Assert.InRange(kv.Value * 6, 0.97, 1.03));
    }

    [Fact]
    public void A_node_of_weight_two_holds_about_twice_the_replicas_of_its_peers()
    {
        // With R = 3 a node holds at most one replica of a shard, and the top-R race is not proportional at the
        // heavy end: over 10 nodes the exponential-race model (score = w / Exp(1), top 3 of 10; Monte Carlo, 400k
        // draws) gives the weight-2 node 0.491 of the shards and each peer 0.279: 1.76 ×, not 2 ×. Peers stay equal.
        var view = View(Nodes(10).Select((x, i) => i == 0 ? x with { Weight = 2 } : x));
        var shares = KeyShares(OwnerTable(view));
        var peers = shares.Where(kv => kv.Key != "node-00").Select(kv => kv.Value).ToList();
        var ratio = shares["node-00"] / peers.Average();
        Report($"weight-2 node holds {ratio:F3} × a peer's replicas");
        Assert.InRange(ratio, 1.70, 1.82);
        Assert.All(peers, p => Assert.InRange(p / peers.Average(), 0.97, 1.03));
    }

    [Fact]
    public void With_three_zones_every_shard_has_one_owner_per_zone()
    {
        // 10 nodes in zones of 4, 3 and 3.
        var view = View(Nodes(10, i => "zone-" + (i % 3)));
        var zoneOf = view.Nodes.ToDictionary(x => x.NodeId, x => x.Zone);
        var owners = OwnerTable(view);
        Assert.All(owners, o => Assert.Equal(3, o.Select(id => zoneOf[id]).Distinct().Count()));

        // Each zone holds a third of the replicas; inside a zone its nodes share that third evenly.
        var shares = KeyShares(owners);
        foreach (var zone in zoneOf.Values.Distinct())
        {
            var members = shares.Where(kv => zoneOf[kv.Key] == zone).Select(kv => kv.Value).ToList();
            Assert.InRange(members.Sum() * 3, 0.99, 1.01);
            Assert.All(members, m => Assert.InRange(m * members.Count * 3, 0.97, 1.03));
        }
    }

    [Fact]
    public void With_two_zones_both_are_represented_in_every_shard()
    {
        var view = View(Nodes(6, i => i < 3 ? "east" : "west"));
        var zoneOf = view.Nodes.ToDictionary(x => x.NodeId, x => x.Zone);
        var owners = OwnerTable(view);
        Assert.All(owners, o => Assert.Equal(2, o.Select(id => zoneOf[id]).Distinct().Count()));
        // Equal zones: every node still holds 1/6 of the replicas.
        Assert.All(KeyShares(owners).Values, share => Assert.InRange(share * 6, 0.97, 1.03));
    }

    [Fact]
    public void A_node_joining_a_zone_takes_slots_only_for_itself()
    {
        var before = OwnerTable(View(Nodes(9, i => "zone-" + (i % 3))));
        var after = OwnerTable(View(Nodes(10, i => "zone-" + (i % 3))));
        for (var s = 0; s < Shards.Count; s++)
        {
            Assert.All(after[s].Except(before[s]), id => Assert.Equal("node-09", id));
        }
    }
}
