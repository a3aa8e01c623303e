using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;

namespace Wharf.Silo.Placement;

/// <summary>Stable grain type names: the placement director maps each to its shard function.</summary>
public static class GrainTypes
{
    public const string Repository = "wharf.repository";
    public const string Upload = "wharf.upload";
    public const string CatalogShard = "wharf.catalog-shard";
    public const string Audit = "wharf.audit";
    public const string Access = "wharf.access";
}

/// <summary>
/// Places a grain on the node that owns its shard in the placement view (DESIGN principle 3), so a repository's
/// grain runs beside the repository's records and an upload's beside its bytes. Orleans' liveness says who answers;
/// the view says who owns: when the owner's silo is not active, activation fails with SiloUnavailableException,
/// which the gateway answers as 503 UNAVAILABLE with Retry-After.
/// </summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class ShardOwnerPlacementStrategy : PlacementStrategy
{
    public static readonly ShardOwnerPlacementStrategy Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardOwnerPlacementAttribute() : PlacementAttribute(ShardOwnerPlacementStrategy.Instance);

public sealed class ShardOwnerPlacementDirector(TopologyFeed topology) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var id = target.GrainIdentity;
        var shard = ShardOf(id);
        var view = topology.Current;
        var owners = RendezvousPlacement.Owners(view, shard, Math.Max(1, view.Replicas));
        var silos = context.GetCompatibleSilos(target);
        foreach (var owner in owners)
        {
            foreach (var silo in silos)
            {
                if (silo.Endpoint.ToString() == owner.SiloEndpoint)
                {
                    return Task.FromResult(silo);
                }
            }
        }
        var names = owners.Count == 0 ? "no node" : string.Join(", ", owners.Select(o => o.NodeId));
        throw new SiloUnavailableException($"shard {shard} of {id} is owned by {names}, which is not active (view epoch {view.Epoch})");
    }

    public static int ShardOf(GrainId id)
    {
        var type = id.Type.ToString();
        return type switch
        {
            GrainTypes.Repository => Shards.OfRepository(id.Key.ToString()!),
            GrainTypes.Upload => Shards.OfUpload(id.Key.ToString()!),
            GrainTypes.CatalogShard => Shards.OfCatalogShard(id.GetIntegerKey()),
            GrainTypes.Audit => Shards.OfAuditHour(id.Key.ToString()!),
            GrainTypes.Access => Shards.OfAccess(),
            _ => throw new InvalidOperationException($"no shard function for grain type {type}"),
        };
    }
}
