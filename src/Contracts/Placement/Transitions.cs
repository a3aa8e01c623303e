namespace Wharf.Contracts.Placement;

/// <summary>
/// Pure functions over a view in transition (docs/architecture.md "View changes"): who owned a shard before, and which
/// nodes gained shards they must sync before the transition can end.
/// </summary>
public static class Transitions
{
    /// <summary>A shard's owners before the transition; its current owners when none is in progress.</summary>
    public static IReadOnlyList<PlacementNode> PreviousOwners(PlacementView view, int shard)
    {
        var before = view.PreviousView ?? view;
        return RendezvousPlacement.Owners(before, shard, Math.Max(1, before.Replicas));
    }

    /// <summary>Whether two views give any shard different owners (states that own, weights, zones or R differ).</summary>
    public static bool OwnershipDiffers(PlacementView a, PlacementView b)
    {
        if (a.Replicas != b.Replicas)
        {
            return true;
        }
        static IEnumerable<(string, string, double)> Owning(PlacementView v) =>
            v.Nodes.Where(RendezvousPlacement.Owns).Select(n => (n.NodeId, n.Zone, n.Weight)).OrderBy(x => x.NodeId, StringComparer.Ordinal);
        return !Owning(a).SequenceEqual(Owning(b));
    }

    /// <summary>The shards <paramref name="nodeId"/> owns in the view but did not own before the transition.</summary>
    public static IEnumerable<int> GainedShards(PlacementView view, string nodeId)
    {
        if (view.PreviousView is not { } before)
        {
            yield break;
        }
        var replicas = Math.Max(1, view.Replicas);
        var replicasBefore = Math.Max(1, before.Replicas);
        for (var shard = 0; shard < Shards.Count; shard++)
        {
            if (RendezvousPlacement.Owners(view, shard, replicas).Any(n => n.NodeId == nodeId)
                && !RendezvousPlacement.Owners(before, shard, replicasBefore).Any(n => n.NodeId == nodeId))
            {
                yield return shard;
            }
        }
    }

    /// <summary>Nodes that gained at least one shard in the transition: the ones that must report synced.</summary>
    public static IReadOnlyList<string> Gainers(PlacementView view) =>
        [.. view.Nodes.Where(RendezvousPlacement.Owns).Select(n => n.NodeId).Where(id => GainedShards(view, id).Any())];
}
