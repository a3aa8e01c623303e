using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Gateway.Auth;
using Wharf.Gateway.Caching;
using Wharf.Gateway.Distribution;

namespace Wharf.Gateway;

/// <summary>How a host (the all-in-one, or the gateway process) puts the registry API on its pipeline.</summary>
public static class GatewayEndpoints
{
    public static IServiceCollection AddWharfGateway(this IServiceCollection services)
    {
        services.AddSingleton<DistributionApi>();
        services.AddSingleton(_ => new Bytes.NodeHealth());
        services.AddSingleton<Bytes.ReplicaWriter>();
        services.AddSingleton<Bytes.ReplicaReader>();
        services.AddOptions<ManifestCacheOptions>().BindConfiguration(ManifestCacheOptions.Section)
            .Validate(o => !o.Validate().Any(), "invalid Wharf:Gateway settings").ValidateOnStart();
        services.AddSingleton(sp => new ManifestCache(
            sp.GetRequiredService<IOptions<ManifestCacheOptions>>().Value, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<Observability.WharfMetrics>()));
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ManifestCacheOptions>>().Value;
            return new BlobCache((long)options.BlobCacheMiB << 20, sp.GetRequiredService<Observability.WharfMetrics>(), (long)options.BlobCacheMaxBlobMiB << 20);
        });
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section)
            .Validate(o => !o.Validate().Any(), "invalid Wharf:Auth settings").ValidateOnStart();
        services.AddSingleton(sp => new StoredAccess(
            sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<IOptions<AuthOptions>>().Value, sp.GetRequiredService<ILogger<StoredAccess>>()));
        services.AddHostedService(sp => sp.GetRequiredService<StoredAccess>());
        services.AddSingleton(sp => new AuthServices(
            sp.GetRequiredService<IOptions<AuthOptions>>().Value,
            sp.GetRequiredService<Microsoft.Extensions.Configuration.IConfiguration>()["Wharf:DataPath"],
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Wharf.Auth"),
            sp.GetRequiredService<StoredAccess>()));
        services.AddSingleton<AdminApi>();
        services.AddOptions<Abuse.RateLimitOptions>().BindConfiguration(Abuse.RateLimitOptions.Section)
            .Validate(o => !o.Validate().Any(), "invalid Wharf:RateLimits settings").ValidateOnStart();
        services.AddSingleton(sp => new Abuse.RateLimits(
            sp.GetRequiredService<IOptions<Abuse.RateLimitOptions>>().Value, sp.GetRequiredService<AuthServices>().Proxies));
        services.AddOptions<Abuse.ConnectionLimitOptions>().BindConfiguration(Abuse.ConnectionLimitOptions.Section)
            .Validate(o => !o.Validate().Any(), "invalid Wharf:Limits settings").ValidateOnStart();
        services.AddOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>()
            .Configure<IOptions<Abuse.ConnectionLimitOptions>>((kestrel, limits) => limits.Value.ApplyTo(kestrel.Limits));
        services.AddOptions<Audit.AuditOptions>().BindConfiguration(Audit.AuditOptions.Section)
            .Validate(o => !o.Validate().Any(), "invalid Wharf:Audit settings").ValidateOnStart();
        services.AddSingleton(sp => new Audit.AuditLog(
            sp.GetRequiredService<IOptions<Audit.AuditOptions>>().Value, sp.GetRequiredService<IGrainFactory>(),
            sp.GetRequiredService<Observability.WharfMetrics>(), sp.GetRequiredService<ILogger<Audit.AuditLog>>()));
        services.AddHostedService(sp => sp.GetRequiredService<Audit.AuditLog>());
        services.AddSingleton<RegistryAuthFilter>();
        services.AddSingleton<TokenEndpoint>();
        return services;
    }

    public static IEndpointRouteBuilder MapWharfGateway(this IEndpointRouteBuilder endpoints)
    {
        var auth = endpoints.ServiceProvider.GetRequiredService<RegistryAuthFilter>();
        var authOptions = endpoints.ServiceProvider.GetRequiredService<IOptions<AuthOptions>>().Value;
        if (authOptions.IsNone)
        {
            endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("Wharf.Auth").LogWarning(
                "the registry is open: anyone who reaches it can push, overwrite and delete (Wharf:Auth:Mode=None); " +
                "keep it on 127.0.0.1 or set Wharf:Auth:Mode=Basic or Token with Wharf:Auth:Htpasswd (docs/security.md)");
        }
        var services = endpoints.ServiceProvider.GetRequiredService<AuthServices>();
        var limits = endpoints.ServiceProvider.GetRequiredService<Abuse.RateLimits>();
        var limitRequests = new Abuse.RateLimitFilter(limits, endpoints.ServiceProvider, tokens: false);
        var limitTokens = new Abuse.RateLimitFilter(limits, endpoints.ServiceProvider, tokens: true);
        var auditRequests = new Audit.AuditFilter(endpoints.ServiceProvider, limits, tokens: false);
        var auditTokens = new Audit.AuditFilter(endpoints.ServiceProvider, limits, tokens: true);
        if (services.Tokens is { CanIssue: true })
        {
            endpoints.MapGet("/auth/token", (HttpContext c, TokenEndpoint t) => t.GetAsync(c)).AddEndpointFilter(auditTokens).AddEndpointFilter(limitTokens);
            endpoints.MapPost("/auth/token", (HttpContext c, TokenEndpoint t) => t.PostAsync(c)).AddEndpointFilter(auditTokens).AddEndpointFilter(limitTokens);
        }
        endpoints.Map("/v2", (HttpContext c, DistributionApi api) => api.HandleAsync(c, "")).AddEndpointFilter(auditRequests).AddEndpointFilter(auth).AddEndpointFilter(limitRequests);
        endpoints.Map("/v2/{**path}", (HttpContext c, DistributionApi api) =>
        {
            // The raw path keeps percent-encoding out of names and references: an encoded '/' is not a separator.
            var raw = c.Request.Path.Value ?? "";
            return api.HandleAsync(c, raw.Length > 4 ? raw[4..] : "");
        }).AddEndpointFilter(auditRequests).AddEndpointFilter(auth).AddEndpointFilter(limitRequests);
        // A handler with parameters (not a RequestDelegate) so the endpoint filters run.
        endpoints.Map("/admin/v1/{**path}", (HttpContext c, AdminApi a) => a.HandleAsync(c)).AddEndpointFilter(new Audit.AuditFilter(endpoints.ServiceProvider, limits, tokens: false, admin: true));
        endpoints.MapGet("/healthz", () => Results.Text("ok"));
        return endpoints;
    }
}
