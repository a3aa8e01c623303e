namespace Wharf.PlacementSim;

/// <summary>A change to the base view: each mover in turn joins it, or leaves it (one at a time, not together).</summary>
public sealed record Change(string Label, bool Joining, int[] Movers);

/// <summary>
/// One cluster layout: N base nodes (indices 0..N−1) with zones and weights, spare nodes (N..) that may join, and the
/// changes simulated over it. Node ids are <c>node-0000</c>… so that ordinal id order (the ranking's tie-break) is
/// index order.
/// </summary>
public sealed class Layout
{
    public const int Spares = 160;

    public required string Name { get; init; }
    public required int N { get; init; }
    public required string[] Zone { get; init; }
    public required double[] Weight { get; init; }

    /// <summary>Base nodes grouped for the balance table (a zone, or a weight): a group's nodes have the same ideal share.</summary>
    public required Func<int, string> Group { get; init; }

    public IReadOnlyList<Change> Changes { get; private set; } = [];

    public int Count => Zone.Length;

    public static string Id(int node) => $"node-{node:D4}";

    /// <summary>The nodes of the base view (<paramref name="add"/>, <paramref name="remove"/>: −1 for none).</summary>
    public IEnumerable<int> View(int add = -1, int remove = -1) =>
        Enumerable.Range(0, N).Where(i => i != remove).Concat(add >= 0 ? [add] : []);

    /// <summary>
    /// The layouts the simulation reports: uniform; 3 equal zones; 3 zones of 50/30/20 %; 10 % of nodes at weight 2.
    /// Each change is made by <paramref name="movers"/> different nodes in turn, so its figures are a mean over them.
    /// </summary>
    public static IEnumerable<Layout> All(int n, int movers)
    {
        Layout Make(string name, Func<int, string> zone, Func<int, double> weight, Func<int, string> group,
            Func<Layout, IEnumerable<Change>> changes)
        {
            var layout = new Layout
            {
                Name = name,
                N = n,
                Group = group,
                Zone = Enumerable.Range(0, n + Spares).Select(zone).ToArray(),
                Weight = Enumerable.Range(0, n + Spares).Select(weight).ToArray(),
            };
            layout.Changes = changes(layout).ToList();
            return layout;
        }
        // Movers picked evenly from the candidates (all of them if fewer), so that they are not neighbours in index order.
        int[] Pick(IEnumerable<int> candidates)
        {
            var all = candidates.ToArray();
            var count = Math.Min(movers, all.Length);
            return Enumerable.Range(0, count).Select(k => all[k * all.Length / count]).ToArray();
        }
        IEnumerable<int> Spare(Layout l) => Enumerable.Range(n, Spares);

        yield return Make("uniform", _ => "", _ => 1, _ => "all", l =>
        [
            new("join", true, Pick(Spare(l))),
            new("leave", false, Pick(l.View())),
        ]);
        yield return Make("3 zones, equal", i => "zone-" + (char)('a' + i % 3), _ => 1, i => "zone-" + (char)('a' + i % 3), l =>
        [
            new("join", true, Pick(Spare(l))),
            new("leave", false, Pick(l.View())),
        ]);
        // Zone a holds 50 % of the nodes, b 30 %, c 20 %: joins into and leaves from each zone.
        Func<int, string> unequal = i => (i % 10) switch { < 5 => "zone-a", < 8 => "zone-b", _ => "zone-c" };
        yield return Make("3 zones, 50/30/20 %", unequal, _ => 1, unequal, l =>
            new[] { "zone-a", "zone-b", "zone-c" }.SelectMany(z => new Change[]
            {
                new($"join {z}", true, Pick(Spare(l).Where(i => l.Zone[i] == z))),
                new($"leave {z}", false, Pick(l.View().Where(i => l.Zone[i] == z))),
            }));
        // Every tenth base node has weight 2, and every other spare.
        Func<int, double> weight = i => i < n ? (i % 10 == 0 ? 2 : 1) : (i % 2 == 1 ? 2 : 1);
        yield return Make("10 % at weight 2", _ => "", weight, i => $"weight {weight(i):0}", l =>
            new[] { 1.0, 2.0 }.SelectMany(w => new Change[]
            {
                new($"join w={w:0}", true, Pick(Spare(l).Where(i => l.Weight[i] == w))),
                new($"leave w={w:0}", false, Pick(l.View().Where(i => l.Weight[i] == w))),
            }));
    }
}
