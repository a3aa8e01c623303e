using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Wharf.Contracts.Placement;

/// <summary>
/// Weighted rendezvous (highest random weight) hashing of a shard over the placement view: a shard's owners are the
/// first R nodes by score −weight / ln(u), u = hash(shard, node) in (0, 1). Adding or removing a node moves only
/// the shards that node gains or loses (≈ R/N of them), and weights shift shares proportionally.
/// When zones are set, owners are spread across zones first, then filled by score.
/// Pure: the same view gives the same owners in every process.
/// </summary>
public static class RendezvousPlacement
{
    /// <summary>Nodes that own data: everything not removed. A down node keeps its shards until it is removed.</summary>
    public static bool Owns(PlacementNode node) => node.State is NodeState.Active or NodeState.Down;

    public static IReadOnlyList<PlacementNode> Owners(PlacementView view, int shard, int replicas)
    {
        var ranked = Rank(view.Nodes.Where(Owns), shard);
        var owners = new List<PlacementNode>(replicas);
        var zones = new HashSet<string>(StringComparer.Ordinal);
        // First pass: the best node of each zone, in score order; then the rest by score.
        foreach (var n in ranked)
        {
            if (owners.Count == replicas)
            {
                break;
            }
            if (zones.Add(n.Zone))
            {
                owners.Add(n);
            }
        }
        foreach (var n in ranked)
        {
            if (owners.Count == replicas)
            {
                break;
            }
            if (!owners.Contains(n))
            {
                owners.Add(n);
            }
        }
        return owners;
    }

    /// <summary>Owners in score order; the order is stable so every gateway prefers the same replica.</summary>
    public static List<PlacementNode> Rank(IEnumerable<PlacementNode> nodes, int shard) =>
        nodes
            .Where(n => n.Weight > 0)
            .Select(n => (Node: n, Score: Score(shard, n)))
            .OrderByDescending(x => x.Score)
            .ThenBy(x => x.Node.NodeId, StringComparer.Ordinal)
            .Select(x => x.Node)
            .ToList();

    public static double Score(int shard, PlacementNode node)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{shard}\0{node.NodeId}"), hash);
        // 53 random bits → u in (0, 1), never 0 or 1.
        var bits = BinaryPrimitives.ReadUInt64BigEndian(hash) >> 11;
        var u = (bits + 0.5) / (1UL << 53);
        return -node.Weight / Math.Log(u);
    }
}
