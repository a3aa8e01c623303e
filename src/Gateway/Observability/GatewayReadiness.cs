using Microsoft.AspNetCore.Http;
using Orleans.Runtime;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;

namespace Wharf.Gateway.Observability;

/// <summary>
/// <c>/readyz</c> of a gateway: the Orleans client reaches the cluster (a management call answered within 2 s and
/// naming at least one active silo), and the placement view has a node that owns data. 200 with each check's state,
/// or 503 naming what is missing.
/// </summary>
public static class GatewayReadiness
{
    public static async Task<IResult> CheckAsync(TopologyFeed feed, IClusterClient client, CancellationToken cancellationToken)
    {
        var checks = new Dictionary<string, string>(StringComparer.Ordinal);
        var ready = true;

        var view = feed.Current;
        var owners = view.Nodes.Count(n => n.State == NodeState.Active);
        checks["view"] = $"epoch {view.Epoch}, {view.Nodes.Count} nodes, {owners} active";
        if (owners == 0)
        {
            ready = false;
        }

        try
        {
            var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(TimeSpan.FromSeconds(2), cancellationToken);
            checks["orleans"] = $"connected, {hosts.Count} active silos";
            if (hosts.Count == 0)
            {
                ready = false;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            checks["orleans"] = $"not connected: {e.GetType().Name}";
            ready = false;
        }

        return Results.Json(new { status = ready ? "ready" : "not ready", checks }, statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }
}
