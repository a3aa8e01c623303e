using Wharf.Contracts.Placement;

namespace Wharf.Tests.Unit.Placement;

/// <summary>
/// Placement at 100 nodes (R = 3) on a fixed sample of shards (every 16th: 4,096 of 65,536), through
/// <see cref="RendezvousPlacement.Owners"/> itself. Exact properties are asserted exactly (a join or leave changes
/// at most one owner of a shard, and only the mover's); counts that theory says are binomial — a node owns each
/// shard independently with probability p, so over n shards it owns n·p ± √(n·p·(1−p)) — are asserted within a
/// stated number of standard deviations of n·p. Every hash is deterministic, so the outcome never changes from run
/// to run; the bands come from the formula, not from observed output. The full-scale figures (all shards, 100 and
/// 1,000 nodes, keys and bytes) come from tools/PlacementSim: docs/architecture.md "Placement at scale (simulation)".
/// </summary>
public class PlacementAtHundredNodesTests
{
    private const int N = 100;
    private const int R = 3;
    private const int Stride = 16;
    private static readonly int[] Sample = Enumerable.Range(0, Shards.Count / Stride).Select(i => i * Stride).ToArray();

    private static PlacementNode Node(int i, string zone = "") => new($"node-{i:D3}", NodeState.Active, zone, 1, "");

    private static List<PlacementNode> Nodes(int n, Func<int, string>? zone = null) =>
        Enumerable.Range(0, n).Select(i => Node(i, zone?.Invoke(i) ?? "")).ToList();

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string[][]> Tables = new();

    /// <summary>Owners of every sampled shard, computed once per view (several tests share a view).</summary>
    private static string[][] Owners(IReadOnlyList<PlacementNode> nodes)
    {
        var view = new PlacementView(1, nodes, R, 2);
        var key = string.Join(";", nodes.Select(x => $"{x.NodeId},{x.State},{x.Zone}"));
        return Tables.GetOrAdd(key, _ =>
        {
            var table = new string[Sample.Length][];
            Parallel.For(0, Sample.Length, i => table[i] = RendezvousPlacement.Owners(view, Sample[i], R).Select(n => n.NodeId).ToArray());
            return table;
        });
    }

    /// <summary>A count theory says is Binomial(shards, p): within <paramref name="sigmas"/> standard deviations of its mean.</summary>
    private static void AssertAbout(long count, double p, double sigmas, string what, bool report = true)
    {
        var mean = Sample.Length * p;
        var sd = Math.Sqrt(Sample.Length * p * (1 - p));
        if (report)
        {
            Report($"{what}: {count} (theory {mean:F1} ± {sd:F1})");
        }
        Assert.True(Math.Abs(count - mean) <= sigmas * sd, $"{what}: {count}, theory {mean:F1} ± {sigmas} × {sd:F1}");
    }

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public void At_100_nodes_a_join_moves_one_replica_of_about_R_over_N_plus_1_of_the_shards_all_to_the_newcomer()
    {
        var before = Owners(Nodes(N));
        var after = Owners(Nodes(N + 1));
        var newcomer = Node(N).NodeId;
        long touched = 0;
        for (var i = 0; i < Sample.Length; i++)
        {
            var gained = after[i].Except(before[i]).ToArray();
            var lost = before[i].Except(after[i]).ToArray();
            // At most one owner changes, and the replica goes to the newcomer: nothing else moves.
            Assert.True(gained.Length <= 1 && gained.All(id => id == newcomer), $"shard {Sample[i]} gained {string.Join(",", gained)}");
            Assert.Equal(gained.Length, lost.Length);
            touched += gained.Length;
        }
        // The newcomer is in a shard's top R with probability R/(N+1); 4 σ ≈ ±36 % of 4,096 × 3/101.
        AssertAbout(touched, R / (double)(N + 1), 4, "shards that moved a replica to the newcomer");
    }

    [Fact]
    public void At_100_nodes_a_leave_moves_exactly_the_leavers_replicas_and_about_R_over_N_of_the_shards()
    {
        var all = Nodes(N);
        var leaver = all[N / 2].NodeId;
        var before = Owners(all);
        var after = Owners(all.Select(x => x.NodeId == leaver ? x with { State = NodeState.Removed } : x).ToList());
        long owned = 0;
        for (var i = 0; i < Sample.Length; i++)
        {
            if (!before[i].Contains(leaver))
            {
                Assert.Equal(before[i], after[i]);
                continue;
            }
            owned++;
            // The leaver's replica goes to one other node; the two remaining owners keep theirs.
            Assert.Equal(new[] { leaver }, before[i].Except(after[i]));
            Assert.Single(after[i].Except(before[i]));
        }
        AssertAbout(owned, R / (double)N, 4, "shards the leaver owned (each moved one replica)");
    }

    [Fact]
    public void At_100_nodes_every_node_owns_about_R_over_N_of_the_shards_and_the_spread_is_that_of_random_draws()
    {
        var owners = Owners(Nodes(N));
        Assert.All(owners, o => Assert.Equal(R, o.Distinct().Count()));
        var counts = owners.SelectMany(o => o).GroupBy(id => id).ToDictionary(g => g.Key, g => (long)g.Count());
        Assert.Equal(N, counts.Count);
        // 5 σ per node: 100 nodes are 100 draws, and none should be an outlier even so.
        foreach (var (id, count) in counts)
        {
            AssertAbout(count, R / (double)N, 5, id, report: false);
        }
        // Hashing is as good as independent draws: the spread across nodes is the binomial's, √((1−p)/(n·p)) ≈ 8.9 %.
        // A CV measured over 100 nodes has a relative standard error of ≈ 1/√(2 × 99) ≈ 7 %: ±30 % is ≈ 4 σ.
        var p = R / (double)N;
        var theory = Math.Sqrt((1 - p) / (Sample.Length * p));
        var mean = counts.Values.Average();
        var cv = Math.Sqrt(counts.Values.Average(c => (c - mean) * (c - mean))) / mean;
        Report($"CV across nodes {cv:P2}, theory {theory:P2}");
        Assert.InRange(cv / theory, 0.70, 1.30);
    }

    public static TheoryData<string, int> ZoneLayouts => new()
    {
        { "3 equal", 3 },
        { "3 of 50/30/20 %", 3 },
        { "2 equal", 2 },
        { "4 equal", 4 },
    };

    private static Func<int, string> ZoneOf(string layout) => layout switch
    {
        "3 equal" => i => "z" + i % 3,
        "3 of 50/30/20 %" => i => (i % 10) switch { < 5 => "a", < 8 => "b", _ => "c" },
        "2 equal" => i => "z" + i % 2,
        _ => i => "z" + i % 4,
    };

    [Theory]
    [MemberData(nameof(ZoneLayouts))]
    public void At_100_nodes_every_shards_owners_span_min_R_zones(string layout, int zones)
    {
        var nodes = Nodes(N, ZoneOf(layout));
        var zoneOf = nodes.ToDictionary(x => x.NodeId, x => x.Zone);
        var owners = Owners(nodes);
        Assert.All(owners, o => Assert.Equal(Math.Min(R, zones), o.Select(id => zoneOf[id]).Distinct().Count()));
        if (zones != R)
        {
            return;
        }
        // With exactly R zones a shard has one owner in each zone, so a node of zone Z owns a shard with probability
        // 1/|Z|: nodes of a small zone carry more than nodes of a large one (zone c's 20 nodes each hold 5/3 of a
        // fair share when zones are 50/30/20 %).
        var counts = owners.SelectMany(o => o).GroupBy(id => id).ToDictionary(g => g.Key, g => (long)g.Count());
        foreach (var node in nodes)
        {
            var size = nodes.Count(x => x.Zone == node.Zone);
            AssertAbout(counts.GetValueOrDefault(node.NodeId), 1.0 / size, 5, $"{node.NodeId} in zone {node.Zone} of {size}", report: false);
        }
    }

    [Fact]
    public void At_100_nodes_in_three_zones_a_join_moves_only_replicas_of_the_newcomers_zone_to_it()
    {
        var zone = ZoneOf("3 equal");
        var before = Owners(Nodes(N, zone));
        var after = Owners(Nodes(N + 1, zone));
        var newcomer = Node(N).NodeId;
        var zoneSize = Enumerable.Range(0, N + 1).Count(i => zone(i) == zone(N));
        long touched = 0;
        for (var i = 0; i < Sample.Length; i++)
        {
            var gained = after[i].Except(before[i]).ToArray();
            var lost = before[i].Except(after[i]).ToArray();
            Assert.True(gained.Length <= 1 && gained.All(id => id == newcomer), $"shard {Sample[i]} gained {string.Join(",", gained)}");
            Assert.Equal(gained.Length, lost.Length);
            Assert.All(lost, id => Assert.Equal(zone(N), zone(int.Parse(id["node-".Length..]))));
            touched += gained.Length;
        }
        // The newcomer leads its zone (and so owns the shard) with probability 1/|zone|, |zone| counting itself.
        AssertAbout(touched, 1.0 / zoneSize, 4, "shards that moved a replica to the newcomer");
    }
}
