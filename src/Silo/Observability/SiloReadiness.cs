using Orleans.Runtime;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Observability;

/// <summary>
/// <c>/readyz</c> of a silo (and of the all-in-one): the store is open, this node is in the placement view, Orleans
/// counts this silo as active, and the view has a node that owns data; it also says whether the membership backend
/// answers (ready either way: the silo serves on the last view). 200 with each check's state, or 503 naming
/// what is missing. Replication will add "enough owners reachable for a write quorum".
/// </summary>
public static class SiloReadiness
{
    public static IResult Check(RecordStore records, TopologyFeed feed, NodeIdentity node, IClusterMembershipService membership, ILocalSiloDetails silo, MembershipBackendHealth backend)
    {
        var checks = new Dictionary<string, string>(StringComparer.Ordinal);
        var ready = true;

        try
        {
            _ = records.Property("rocksdb.estimate-num-keys");
            checks["store"] = "open";
        }
        catch (Exception e) when (e is ObjectDisposedException or RocksDbSharp.RocksDbException)
        {
            checks["store"] = "closed";
            ready = false;
        }

        var view = feed.Current;
        if (view.Find(node.Id) is { } me)
        {
            checks["view"] = $"node {me.NodeId} {me.State}, epoch {view.Epoch}";
        }
        else
        {
            checks["view"] = $"node {node.Id} is not in the placement view (epoch {view.Epoch})";
            ready = false;
        }
        if (!view.Nodes.Any(n => n.State == NodeState.Active))
        {
            checks["owners"] = "no node in the view owns data";
            ready = false;
        }
        else
        {
            checks["owners"] = $"{view.Nodes.Count(n => n.State == NodeState.Active)} active";
        }

        // An unreachable backend changes no view: this silo keeps serving on the last one, so it stays ready.
        checks["membership"] = backend.Outage is { } outage
            ? $"backend unreachable since {outage.Since:O} ({outage.Reason}); serving on placement view epoch {view.Epoch}"
            : "backend reachable";

        var status = membership.CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        checks["orleans"] = status.ToString();
        if (status != SiloStatus.Active)
        {
            ready = false;
        }

        return Results.Json(new { status = ready ? "ready" : "not ready", checks }, statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }
}
