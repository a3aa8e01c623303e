using System.Text.Json;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo.Observability;

namespace Wharf.Silo.Admin;

/// <summary>
/// The placement coordinator on every silo, and the operator's edits of the view on the silo's HTTP port
/// (docs/architecture.md "View changes and the coordinator"): drain a node, forget a dead one, set R and W. Each edit
/// is a pure function (<see cref="ViewEdits"/>) applied by compare-and-set; refusals answer
/// <c>{"error": CODE, "message": "..."}</c> with 400, 404, 409, or 503 when the membership backend does not answer.
/// </summary>
public static class ClusterAdmin
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IServiceCollection AddPlacementCoordinator(
        this IServiceCollection services, ICasStore cas, PlacementViewStore views, TopologyFeed topology, string clusterId, string nodeId, CoordinatorSettings settings)
    {
        services.AddSingleton(new TransitionReports(cas, clusterId));
        services.AddSingleton<MembershipBackendHealth>();
        services.AddSingleton(sp => new PlacementCoordinator(
            cas, views, topology, sp.GetRequiredService<TransitionReports>(), sp.GetRequiredService<MembershipBackendHealth>(), clusterId, nodeId, settings,
            sp.GetRequiredService<ILogger<PlacementCoordinator>>(), sp.GetRequiredService<IHostApplicationLifetime>(),
            retire: sp.GetService<NodeRetirement>() is { } retirement ? retirement.Retire : null));
        services.AddHostedService(sp => sp.GetRequiredService<PlacementCoordinator>());
        services.AddSingleton<MembershipMetrics>();
        return services;
    }

    private sealed record ReplicationRequest(int? Replicas, int? WriteQuorum);

    public static IEndpointRouteBuilder MapClusterAdmin(this IEndpointRouteBuilder app, ICasStore cas, PlacementViewStore views, TopologyFeed topology, string clusterId)
    {
        app.ServiceProvider.GetService<MembershipMetrics>();

        app.MapPost("/admin/nodes/{nodeId}/drain", async (string nodeId, TransitionReports reports, CancellationToken ct) =>
        {
            try
            {
                if ((await views.ReadAsync(ct)).Find(nodeId)?.State == NodeState.Active)
                {
                    // A report left from an earlier drain must not remove the node before this one has moved anything.
                    await reports.ClearDrainedAsync(nodeId, ct);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return Unavailable(e);
            }
            return await ApplyAsync(views, topology, v => ViewEdits.Drain(v, nodeId), ct);
        });

        app.MapPost("/admin/nodes/{nodeId}/forget", async (string nodeId, CancellationToken ct) =>
        {
            bool leaseLive;
            try
            {
                leaseLive = await NodeLease.ReadExpiryAsync(cas, clusterId, nodeId, ct) is { } expires && expires > DateTimeOffset.UtcNow;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return Unavailable(e);
            }
            return await ApplyAsync(views, topology, v => ViewEdits.Forget(v, nodeId, leaseLive), ct);
        });

        app.MapPut("/admin/replication", async (HttpRequest request, CancellationToken ct) =>
        {
            ReplicationRequest? body;
            try
            {
                body = await JsonSerializer.DeserializeAsync<ReplicationRequest>(request.Body, Json, ct);
            }
            catch (JsonException e)
            {
                return Error(400, ViewEdits.InvalidReplication, $"the body must be JSON {{\"replicas\": R, \"writeQuorum\": W}}: {e.Message}");
            }
            if (body is not { Replicas: { } r, WriteQuorum: { } w })
            {
                return Error(400, ViewEdits.InvalidReplication, "the body must be JSON {\"replicas\": R, \"writeQuorum\": W} with both numbers");
            }
            return await ApplyAsync(views, topology, v => ViewEdits.SetReplication(v, r, w), ct);
        });
        return app;
    }

    private static async Task<IResult> ApplyAsync(PlacementViewStore views, TopologyFeed topology, Func<PlacementView, ViewEdit> edit, CancellationToken ct)
    {
        ViewEdit? last = null;
        PlacementView view;
        try
        {
            view = await views.UpdateAsync(v => (last = edit(v)).View, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return Unavailable(e);
        }
        if (last is not { Accepted: true })
        {
            return Error(last?.Status ?? 500, last?.Error ?? "INTERNAL", last?.Message ?? "no decision");
        }
        topology.Publish(view);
        return Results.Json(new { message = last.Message, epoch = view.Epoch, view });
    }

    private static IResult Unavailable(Exception e) =>
        Error(503, "MEMBERSHIP_UNAVAILABLE", $"the membership backend did not answer ({e.Message}); nothing changed");

    private static IResult Error(int status, string error, string message) => Results.Json(new { error, message }, statusCode: status);
}
