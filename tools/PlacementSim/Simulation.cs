using System.Collections.Concurrent;
using Wharf.Contracts.Placement;

namespace Wharf.PlacementSim;

/// <summary>What one change moved, summed over its movers (each joins or leaves the base view on its own).</summary>
public sealed class ChangeResult(int movers)
{
    public long Touched;      // shards whose owner set changed
    public long Slots;        // replicas copied to a new owner
    public long OtherSlots;   // replicas that went to (join) or came from (leave) a node other than the mover
    public long NotSpread;    // shards whose owners span fewer than min(R, zones) zones after the change
    public int MaxChanged;    // most owners one shard changed
    public readonly long[] MoverKeys = new long[movers];   // keys in the replicas each mover's change copied
    public readonly long[] MoverBytes = new long[movers];

    public void Add(ChangeResult o)
    {
        Touched += o.Touched;
        Slots += o.Slots;
        OtherSlots += o.OtherSlots;
        NotSpread += o.NotSpread;
        MaxChanged = Math.Max(MaxChanged, o.MaxChanged);
        for (var t = 0; t < MoverKeys.Length; t++)
        {
            MoverKeys[t] += o.MoverKeys[t];
            MoverBytes[t] += o.MoverBytes[t];
        }
    }
}

/// <summary>The base view's load per node (shards, keys, bytes held), its zone spread, and each change's moves.</summary>
public sealed class LayoutResult(Layout layout)
{
    public readonly long[] Shards = new long[layout.Count];
    public readonly long[] Keys = new long[layout.Count];
    public readonly long[] Bytes = new long[layout.Count];
    public long NotSpread;
    public readonly ChangeResult[] Changes = layout.Changes.Select(c => new ChangeResult(c.Movers.Length)).ToArray();

    public void Add(LayoutResult o)
    {
        for (var i = 0; i < Shards.Length; i++)
        {
            Shards[i] += o.Shards[i];
            Keys[i] += o.Keys[i];
            Bytes[i] += o.Bytes[i];
        }
        NotSpread += o.NotSpread;
        for (var c = 0; c < Changes.Length; c++)
        {
            Changes[c].Add(o.Changes[c]);
        }
    }
}

/// <summary>
/// Every shard hashed once over all nodes of the layouts (they share ids), owners picked per layout for the base
/// view and for every single join and leave, loads and moves summed per thread and merged. A join can only change a
/// shard whose base top R or zone leader the newcomer beats, and a leave only a shard the leaver owned; every other
/// shard keeps its owners and is not re-ranked. A sample of shards is checked against
/// <see cref="RendezvousPlacement.Owners"/> itself, for the base view and for two movers of every change (whether
/// the shortcut applied or not).
/// </summary>
public static class Simulation
{
    public sealed record Outcome(LayoutResult[] Results, int Checked, int Views, IReadOnlyList<string> Mismatches);

    public static Outcome Run(IReadOnlyList<Layout> layouts, Workload work, int r, int verifyShards)
    {
        var nodes = layouts[0].Count;
        var fast = new FastOwners(nodes);
        var zoneNames = layouts.Select(l => l.Zone.Distinct().Order(StringComparer.Ordinal).ToArray()).ToArray();
        var zoneOf = layouts.Select((l, k) => l.Zone.Select(z => Array.IndexOf(zoneNames[k], z)).ToArray()).ToArray();
        // A shard's owners should span min(R, zones) zones (every zone keeps nodes through any one change here).
        var spread = layouts.Select((l, k) => Math.Min(r, l.View().Select(i => zoneOf[k][i]).Distinct().Count())).ToArray();
        var stride = Math.Max(1, Shards.Count / Math.Max(1, verifyShards));

        var total = layouts.Select(l => new LayoutResult(l)).ToArray();
        var mismatches = new ConcurrentBag<string>();
        var gate = new object();
        Parallel.For(0, Shards.Count,
            () => layouts.Select(l => new LayoutResult(l)).ToArray(),
            (shard, _, local) =>
            {
                Span<double> logU = stackalloc double[nodes];
                Span<double> score = stackalloc double[nodes];
                Span<int> before = stackalloc int[r];
                Span<int> after = stackalloc int[r];
                Span<int> leaders = stackalloc int[8];
                Span<int> top = stackalloc int[r];
                Span<int> scratchZone = stackalloc int[8];
                Span<int> scratchTop = stackalloc int[r];
                fast.LogU(shard, logU);
                var keys = work.KeysPerShard[shard];
                var bytes = work.BytesPerShard[shard];
                var sampled = shard % stride == 0;
                for (var k = 0; k < layouts.Count; k++)
                {
                    var layout = layouts[k];
                    var acc = local[k];
                    var zones = zoneNames[k].Length;
                    for (var i = 0; i < nodes; i++)
                    {
                        score[i] = -layout.Weight[i] / logU[i];
                    }
                    var n0 = FastOwners.Select(score, layout.N, -1, -1, zoneOf[k], zones, r, before, leaders, top, out var topCount);
                    foreach (var o in before[..n0])
                    {
                        acc.Shards[o]++;
                        acc.Keys[o] += keys;
                        acc.Bytes[o] += bytes;
                    }
                    acc.NotSpread += Spread(before[..n0], zoneOf[k]) < spread[k] ? 1 : 0;
                    if (sampled)
                    {
                        Verify(layout, -1, -1, shard, r, before[..n0], mismatches);
                    }
                    for (var c = 0; c < layout.Changes.Count; c++)
                    {
                        var change = layout.Changes[c];
                        var result = acc.Changes[c];
                        for (var t = 0; t < change.Movers.Length; t++)
                        {
                            var m = change.Movers[t];
                            var (add, remove) = change.Joining ? (m, -1) : (-1, m);
                            var changed = change.Joining
                                ? topCount < r || FastOwners.Better(score, m, top[r - 1])
                                    || leaders[zoneOf[k][m]] < 0 || FastOwners.Better(score, m, leaders[zoneOf[k][m]])
                                : before[..n0].Contains(m);
                            var n1 = n0;
                            if (changed)
                            {
                                n1 = FastOwners.Select(score, layout.N, add, remove, zoneOf[k], zones, r, after, scratchZone, scratchTop, out var _);
                                Tally(before[..n0], after[..n1], m, change.Joining, keys, bytes, t, result);
                                result.NotSpread += Spread(after[..n1], zoneOf[k]) < spread[k] ? 1 : 0;
                            }
                            if (sampled && (t == 0 || t == change.Movers.Length - 1))
                            {
                                Verify(layout, add, remove, shard, r, changed ? after[..n1] : before[..n0], mismatches);
                            }
                        }
                    }
                }
                return local;
            },
            local =>
            {
                lock (gate)
                {
                    for (var k = 0; k < layouts.Count; k++)
                    {
                        total[k].Add(local[k]);
                    }
                }
            });
        var checkedShards = (Shards.Count + stride - 1) / stride;
        return new Outcome(total, checkedShards, layouts.Sum(l => 1 + 2 * l.Changes.Count), mismatches.ToList());
    }

    private static int Spread(ReadOnlySpan<int> owners, int[] zoneOf)
    {
        var seen = 0u;
        foreach (var o in owners)
        {
            seen |= 1u << zoneOf[o];
        }
        return System.Numerics.BitOperations.PopCount(seen);
    }

    private static void Tally(ReadOnlySpan<int> before, ReadOnlySpan<int> after, int mover, bool joining, long keys, long bytes,
        int t, ChangeResult result)
    {
        var gained = 0;
        var other = 0;
        foreach (var n in after)
        {
            if (!before.Contains(n))
            {
                gained++;
                other += joining && n != mover ? 1 : 0;
            }
        }
        foreach (var n in before)
        {
            if (!after.Contains(n))
            {
                other += !joining && n != mover ? 1 : 0;
            }
        }
        if (gained == 0)
        {
            return;
        }
        result.Touched++;
        result.Slots += gained;
        result.OtherSlots += other;
        result.MaxChanged = Math.Max(result.MaxChanged, gained);
        result.MoverKeys[t] += gained * keys;
        result.MoverBytes[t] += gained * bytes;
    }

    private static void Verify(Layout layout, int add, int remove, int shard, int r, ReadOnlySpan<int> fast, ConcurrentBag<string> mismatches)
    {
        var nodes = layout.View(add, remove)
            .Select(i => new PlacementNode(Layout.Id(i), NodeState.Active, layout.Zone[i], layout.Weight[i], ""))
            .ToList();
        var real = RendezvousPlacement.Owners(new PlacementView(1, nodes, r), shard, r).Select(n => n.NodeId).ToArray();
        var mine = fast.ToArray().Select(Layout.Id).ToArray();
        if (!real.SequenceEqual(mine))
        {
            var view = add >= 0 ? $"{Layout.Id(add)} joined" : remove >= 0 ? $"{Layout.Id(remove)} left" : "base view";
            mismatches.Add($"{layout.Name}, {view}, shard {shard}: Owners [{string.Join(",", real)}], simulation [{string.Join(",", mine)}]");
        }
    }
}
