using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Wharf.Contracts.Placement;

namespace Wharf.PlacementSim;

/// <summary>
/// <see cref="RendezvousPlacement.Owners"/> computed the way a simulation can afford at 1,000 nodes: each (shard, node)
/// hash is computed once per shard (from pre-encoded bytes, no string formatting) and shared by every layout and
/// view, and owners are picked by one linear scan (best node per zone, top R overall) instead of a full sort.
/// The arithmetic is the same as <see cref="RendezvousPlacement.Score"/> — the same SHA-256 input bytes, the same
/// u, the same −w / ln(u) in doubles, ties broken by ordinal node id — so owners are identical; the program checks
/// that against <see cref="RendezvousPlacement.Owners"/> on a sample of shards every run and fails otherwise.
/// </summary>
public sealed class FastOwners
{
    private readonly byte[][] _nodeSuffix;

    public FastOwners(int nodes)
    {
        if (nodes > 10_000)
        {
            throw new ArgumentOutOfRangeException(nameof(nodes), "ids are node-0000…node-9999 so that ordinal order is index order");
        }
        _nodeSuffix = Enumerable.Range(0, nodes).Select(i => Encoding.UTF8.GetBytes("\0" + Layout.Id(i))).ToArray();
    }

    /// <summary>ln(u) of every node for one shard: the only hashing, shared by every layout and view.</summary>
    public void LogU(int shard, Span<double> logU)
    {
        Span<byte> input = stackalloc byte[64];
        Span<byte> hash = stackalloc byte[32];
        // RendezvousPlacement.Score hashes UTF-8 of $"{shard}\0{nodeId}"; an int formats the same in every culture.
        var prefix = Encoding.UTF8.GetBytes(shard.ToString(CultureInfo.InvariantCulture), input);
        for (var i = 0; i < logU.Length; i++)
        {
            var suffix = _nodeSuffix[i];
            suffix.CopyTo(input[prefix..]);
            SHA256.HashData(input[..(prefix + suffix.Length)], hash);
            var bits = BinaryPrimitives.ReadUInt64BigEndian(hash) >> 11;
            var u = (bits + 0.5) / (1UL << 53);
            logU[i] = Math.Log(u);
        }
    }

    /// <summary>
    /// The owners of one shard in one view — base nodes 0..<paramref name="baseCount"/>−1 without
    /// <paramref name="remove"/>, plus <paramref name="add"/> (−1: none) — in the order
    /// <see cref="RendezvousPlacement.Owners"/> gives them: the best node of each zone in score order (at most R),
    /// then the best of the rest. Only the top R overall can be needed for the fill: at most k &lt; R of them are zone
    /// leaders, so the first R − k others are among them. <paramref name="bestOfZone"/> and <paramref name="top"/>
    /// are left holding each zone's best node and the top R (<paramref name="topCount"/> of them).
    /// </summary>
    public static int Select(ReadOnlySpan<double> score, int baseCount, int add, int remove, int[] zoneOf, int zones, int r,
        Span<int> owners, Span<int> bestOfZone, Span<int> top, out int topCount)
    {
        bestOfZone[..zones].Fill(-1);
        topCount = 0;
        for (var k = 0; k <= baseCount; k++)
        {
            var i = k < baseCount ? k : add;
            if (i < 0 || i == remove)
            {
                continue;
            }
            var z = zoneOf[i];
            if (bestOfZone[z] < 0 || Better(score, i, bestOfZone[z]))
            {
                bestOfZone[z] = i;
            }
            if (topCount < r || Better(score, i, top[topCount - 1]))
            {
                var at = Math.Min(topCount, r - 1);
                while (at > 0 && Better(score, i, top[at - 1]))
                {
                    top[at] = top[at - 1];
                    at--;
                }
                top[at] = i;
                topCount = Math.Min(topCount + 1, r);
            }
        }
        // Zone leaders in score order (insertion sort: there are a handful).
        var leaders = 0;
        Span<int> sorted = stackalloc int[zones];
        for (var z = 0; z < zones; z++)
        {
            var n = bestOfZone[z];
            if (n < 0)
            {
                continue;
            }
            var at = leaders++;
            while (at > 0 && Better(score, n, sorted[at - 1]))
            {
                sorted[at] = sorted[at - 1];
                at--;
            }
            sorted[at] = n;
        }
        var count = 0;
        for (var k = 0; k < leaders && count < r; k++)
        {
            owners[count++] = sorted[k];
        }
        for (var k = 0; k < topCount && count < r; k++)
        {
            if (!owners[..count].Contains(top[k]))
            {
                owners[count++] = top[k];
            }
        }
        return count;
    }

    /// <summary>Higher score first; equal scores by ordinal node id, which is index order here.</summary>
    public static bool Better(ReadOnlySpan<double> score, int a, int b) => score[a] > score[b] || (score[a] == score[b] && a < b);
}
