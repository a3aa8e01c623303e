using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Wharf.Gateway.Distribution;

namespace Wharf.Gateway;

/// <summary>How a host (the all-in-one, or the gateway process) puts the registry API on its pipeline.</summary>
public static class GatewayEndpoints
{
    public static IServiceCollection AddWharfGateway(this IServiceCollection services)
    {
        services.AddSingleton<DistributionApi>();
        return services;
    }

    public static IEndpointRouteBuilder MapWharfGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.Map("/v2", (HttpContext c, DistributionApi api) => api.HandleAsync(c, ""));
        endpoints.Map("/v2/{**path}", (HttpContext c, DistributionApi api) =>
        {
            // The raw path keeps percent-encoding out of names and references: an encoded '/' is not a separator.
            var raw = c.Request.Path.Value ?? "";
            return api.HandleAsync(c, raw.Length > 4 ? raw[4..] : "");
        });
        endpoints.MapGet("/healthz", () => Results.Text("ok"));
        return endpoints;
    }
}
