using Wharf.Contracts.Placement;

namespace Wharf.PlacementSim;

/// <summary>The tables the simulation prints (markdown, pasted into docs/architecture.md).</summary>
public static class Reports
{
    private static readonly string[] Loads = ["shards", "keys", "bytes"];

    /// <summary>
    /// A node's share of all replicas × N (1 = a fair share), per group of nodes that should hold the same; mean
    /// against the group's ideal, spread within the group against the CV that independent hashing predicts.
    /// </summary>
    public static void Balance(IReadOnlyList<Layout> layouts, LayoutResult[] results, Workload work, int r)
    {
        Console.WriteLine();
        Console.WriteLine("### Balance: each node's share of all replicas × N; per load: mean/ideal · max/mean · min/mean · CV (theory)");
        Console.WriteLine();
        Console.WriteLine("| layout | nodes | ideal share × N | shards | keys | bytes |");
        Console.WriteLine("|---|---|---|---|---|---|");
        for (var k = 0; k < layouts.Count; k++)
        {
            var layout = layouts[k];
            foreach (var group in Groups(layout))
            {
                var p = InclusionProbability(layout, layout.View(), group.Nodes[0], r);
                var ideal = p * layout.N / r;
                var cells = Loads.Select((_, m) =>
                {
                    var held = m switch { 0 => results[k].Shards, 1 => results[k].Keys, _ => results[k].Bytes };
                    var all = (double)held.Sum();
                    var shares = group.Nodes.Select(i => held[i] / all * layout.N).ToArray();
                    var mean = shares.Average();
                    var cv = Math.Sqrt(shares.Sum(x => (x - mean) * (x - mean)) / shares.Length) / mean;
                    var perShard = m switch { 0 => Enumerable.Repeat(1L, Shards.Count).ToArray(), 1 => work.KeysPerShard, _ => work.BytesPerShard };
                    var theory = double.IsNaN(p) ? "—" : $"{Theory.Cv(p, perShard):P1}";
                    return $"{mean / ideal:F3} · {shares.Max() / mean:F3} · {shares.Min() / mean:F3} · {cv:P1} ({theory})";
                });
                Console.WriteLine($"| {layout.Name}{(group.Name == "all" ? "" : ": " + group.Name)} | {group.Nodes.Length} | {ideal:F3} | {string.Join(" | ", cells)} |");
            }
        }
    }

    /// <summary>Weighted nodes' shares against strict proportionality (w/Σw) and against the top-R race's theory.</summary>
    public static void Weights(IReadOnlyList<Layout> layouts, LayoutResult[] results, int r)
    {
        var k = layouts.ToList().FindIndex(l => l.View().Select(i => l.Weight[i]).Distinct().Count() > 1);
        if (k < 0)
        {
            return;
        }
        var layout = layouts[k];
        var totalWeight = layout.View().Sum(i => layout.Weight[i]);
        Console.WriteLine();
        Console.WriteLine($"### Weights ({layout.Name}): mean share of all replicas × N");
        Console.WriteLine();
        Console.WriteLine("| weight | nodes | proportional w·N/Σw | top-R theory | shards | keys | bytes | bytes / proportional | bytes / theory |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        var means = new List<double>();
        foreach (var group in Groups(layout))
        {
            var w = layout.Weight[group.Nodes[0]];
            var proportional = w * layout.N / totalWeight;
            var theory = InclusionProbability(layout, layout.View(), group.Nodes[0], r) * layout.N / r;
            double Mean(long[] held) => group.Nodes.Average(i => held[i] / (double)held.Sum() * layout.N);
            var (shards, keys, bytes) = (Mean(results[k].Shards), Mean(results[k].Keys), Mean(results[k].Bytes));
            means.Add(shards);
            Console.WriteLine($"| {w:0} | {group.Nodes.Length} | {proportional:F3} | {theory:F3} | {shards:F3} | {keys:F3} | {bytes:F3} | {bytes / proportional:F3} | {bytes / theory:F3} |");
        }
        Console.WriteLine();
        Console.WriteLine($"A weight-2 node holds {means.Max() / means.Min():F3} × the shards of a weight-1 node (proportional: 2).");
    }

    /// <summary>
    /// Each change made by each of its movers on its own: replicas copied, as a fraction of the distinct data (one copy
    /// of every key), against the mover's fair share R·w/Σw (R/N for equal weights) and against theory.
    /// </summary>
    public static void Moves(IReadOnlyList<Layout> layouts, LayoutResult[] results, Workload work, int r)
    {
        Console.WriteLine();
        Console.WriteLine("### Joins and leaves: each made by several different nodes in turn, one at a time; moved = replicas copied, " +
            "as a fraction of the distinct data (one copy of every key); mean (min–max) over the nodes");
        Console.WriteLine();
        Console.WriteLine("| layout | change | nodes | ideal R·w/Σw | keys moved | keys moved / ideal | bytes moved / ideal | theory (zones, weights) | keys moved / theory | most owners changed in a shard | replicas moved not to/from the mover |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        var totalBytes = (double)work.TotalBytes;
        for (var k = 0; k < layouts.Count; k++)
        {
            var layout = layouts[k];
            for (var c = 0; c < layout.Changes.Count; c++)
            {
                var change = layout.Changes[c];
                var result = results[k].Changes[c];
                var ideal = new double[change.Movers.Length];
                var theory = new double[change.Movers.Length];
                for (var t = 0; t < change.Movers.Length; t++)
                {
                    var m = change.Movers[t];
                    var view = change.Joining ? layout.View(add: m).ToArray() : layout.View().ToArray();
                    ideal[t] = r * layout.Weight[m] / view.Sum(i => layout.Weight[i]);
                    // The mover's share of the distinct data is its probability of owning a shard.
                    theory[t] = InclusionProbability(layout, view, m, r);
                }
                var keys = result.MoverKeys.Select(x => x / (double)work.Keys).ToArray();
                var bytes = result.MoverBytes.Select(x => x / totalBytes).ToArray();
                Console.WriteLine($"| {layout.Name} | {change.Label} | {change.Movers.Length} | {ideal.Average():P3} | {keys.Average():P3} | " +
                    $"{Range(keys.Zip(ideal, (a, b) => a / b))} | {Range(bytes.Zip(ideal, (a, b) => a / b))} | {theory.Average():P3} | " +
                    $"{Range(keys.Zip(theory, (a, b) => a / b))} | {result.MaxChanged} | {result.OtherSlots} |");
            }
        }
    }

    /// <summary>Shards whose owners span min(R, zones) zones, in the base view and after every join and leave.</summary>
    public static void Spread(IReadOnlyList<Layout> layouts, LayoutResult[] results, int r)
    {
        Console.WriteLine();
        Console.WriteLine("### Zone spread: shards whose owners span min(R, zones) zones (base view; after every single join and leave)");
        Console.WriteLine();
        Console.WriteLine("| layout | zones | base view | after the joins and leaves (shard × view) |");
        Console.WriteLine("|---|---|---|---|");
        for (var k = 0; k < layouts.Count; k++)
        {
            var layout = layouts[k];
            var zones = layout.View().Select(i => layout.Zone[i]).Distinct().Count();
            if (zones < 2)
            {
                continue;
            }
            var views = (long)layout.Changes.Sum(c => c.Movers.Length) * Shards.Count;
            var bad = results[k].Changes.Sum(c => c.NotSpread);
            Console.WriteLine($"| {layout.Name} | {zones} (min(R, zones) = {Math.Min(r, zones)}) | " +
                $"{Shards.Count - results[k].NotSpread:N0} of {Shards.Count:N0} | {views - bad:N0} of {views:N0} |");
        }
    }

    private static string Range(IEnumerable<double> values)
    {
        var v = values.ToArray();
        return $"{v.Average():F3} ({v.Min():F3}–{v.Max():F3})";
    }

    private static IEnumerable<(string Name, int[] Nodes)> Groups(Layout layout) =>
        layout.View().GroupBy(layout.Group).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => (g.Key, g.ToArray()));

    /// <summary>
    /// The probability that node <paramref name="me"/> owns a given shard in a view: the top-R race's integral without
    /// zones; 1/|zone| when there are exactly R zones of equal-weight nodes (one owner per zone); otherwise unknown (NaN).
    /// </summary>
    private static double InclusionProbability(Layout layout, IEnumerable<int> view, int me, int r)
    {
        var nodes = view.ToArray();
        var zones = nodes.Select(i => layout.Zone[i]).Distinct().Count();
        if (zones == 1)
        {
            var others = nodes.Where(i => i != me).GroupBy(i => layout.Weight[i]).Select(g => (g.Key, g.Count())).ToList();
            return Theory.TopRProbability(layout.Weight[me], others, r);
        }
        if (zones == r && nodes.All(i => layout.Weight[i] == 1))
        {
            return 1.0 / nodes.Count(i => layout.Zone[i] == layout.Zone[me]);
        }
        return double.NaN;
    }
}
