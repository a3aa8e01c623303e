using Wharf.Gateway.Errors;
using Wharf.Membership.Security;

namespace Wharf.Silo.Admin;

/// <summary>
/// With a <see cref="ClusterSecret"/> configured, a silo answers its byte service (every gRPC call on the byte port,
/// every request on the bulk port) and its admin endpoints only to callers that send it in <see cref="ClusterSecret.Header"/>: gRPC calls without it
/// end with status <c>UNAUTHENTICATED</c> before any handler runs, admin requests with 401 <c>UNAUTHORIZED</c>.
/// <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> stay open for probes and scrapers.
/// </summary>
public static class ClusterSecretMiddleware
{
    /// <summary>The silo's own admin endpoints (the gateway's user admin API authenticates administrators itself).</summary>
    private static readonly string[] AdminPaths = ["/admin/cluster", "/admin/nodes", "/admin/replication", "/admin/scrub", "/admin/repair", "/admin/audit"];

    public static IApplicationBuilder UseClusterSecret(this IApplicationBuilder app, ClusterSecret secret, int bytesPort, int bulkPort = 0) =>
        app.Use(async (context, next) =>
        {
            var onBytePort = bytesPort != 0 && context.Connection.LocalPort == bytesPort;
            var onBulkPort = bulkPort != 0 && context.Connection.LocalPort == bulkPort;
            var admin = !onBytePort && (onBulkPort || AdminPaths.Any(p => context.Request.Path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase)));
            if ((onBytePort || admin) && !secret.Matches(context.Request.Headers[ClusterSecret.Header].ToString() is { Length: > 0 } v ? v : null))
            {
                if (onBytePort)
                {
                    // A trailers-only gRPC answer: clients see RpcException(StatusCode.Unauthenticated).
                    context.Response.StatusCode = StatusCodes.Status200OK;
                    context.Response.ContentType = "application/grpc";
                    context.Response.Headers["grpc-status"] = "16";
                    context.Response.Headers["grpc-message"] = "this silo serves members of its cluster only (wharf-cluster-secret)";
                    return;
                }
                await OciError.WriteAsync(context, ErrorCode.Unauthorized, $"the silo {(onBulkPort ? "bulk byte path" : "admin API")} needs the cluster secret in the {ClusterSecret.Header} header");
                return;
            }
            await next(context);
        });
}
