using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Bytes;
using Wharf.Gateway.Bytes;
using Wharf.Gateway.Observability;
using Wharf.Membership;
using Wharf.Membership.Consul;
using Wharf.Membership.Topology;

namespace Wharf.Gateway;

/// <summary>
/// The stateless gateway process: the /v2/ API, an Orleans client for metadata, and the byte router over the
/// placement view for bytes. Any gateway serves any request; a client may send one upload's POST, PATCH and PUT
/// to three different gateways.
/// </summary>
public static class GatewayHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        var app = Build(args);
        if (app is null)
        {
            return 2;
        }
        try
        {
            await app.RunAsync();
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisConnectionException or HttpRequestException or Membership.Consul.ConsulException)
        {
            Console.Error.WriteLine($"wharf gateway: cannot reach the membership backend: {e.Message}");
            return 3;
        }
        return 0;
    }

    public static WebApplication? Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(Wharf.Gateway.Hosting.WharfHost.Options(args));
        var options = builder.Configuration.GetSection("Wharf").Get<GatewayOptions>() ?? new GatewayOptions();
        var auth = builder.Configuration.GetSection(Wharf.Gateway.Auth.AuthOptions.Section).Get<Wharf.Gateway.Auth.AuthOptions>() ?? new();
        var problems = options.Validate()
            .Concat(auth.Validate())
            // A gateway has no data folder to keep a generated key in, and every gateway must sign with the same key.
            .Concat(auth.IsToken && auth.Token.SigningKey is null && !auth.Token.IsExternal
                ? ["Wharf:Auth:Mode=Token on a gateway process needs Wharf:Auth:Token:SigningKey (one PEM file mounted on every gateway) or Wharf:Auth:Token:TrustedKeys"]
                : Array.Empty<string>())
            .Concat((builder.Configuration.GetSection(Caching.ManifestCacheOptions.Section).Get<Caching.ManifestCacheOptions>() ?? new()).Validate())
            .ToList();
        Membership.Security.ClusterSecret? secret = null;
        try
        {
            secret = Membership.Security.ClusterSecret.From(builder.Configuration);
        }
        catch (ArgumentException e)
        {
            problems.Add(e.Message);
        }
        if (problems.Count == 0)
        {
            using var bootLogs = LoggerFactory.Create(l => l.AddConsole());
            var tls = builder.Configuration.GetSection(Tls.TlsOptions.Section).Get<Tls.TlsOptions>() ?? new();
            if (Tls.GatewayTls.Configure(builder, tls, developmentPath: null, bootLogs.CreateLogger("Wharf.Gateway.Tls")) is { } tlsProblem)
            {
                problems.Add(tlsProblem);
            }
        }
        if (problems.Count > 0)
        {
            Console.Error.WriteLine("wharf gateway: invalid configuration: " + string.Join("; ", problems));
            return null;
        }
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        Hosting.KestrelBlocks.Configure(builder);
        // Per-request framework logs cost 8–30 % of a small GET's CPU (loadtest/allinone): warnings only by default.
        foreach (var category in new[] { "Microsoft.AspNetCore", "Orleans", "Grpc", "Polly" })
        {
            if (builder.Configuration[$"Logging:LogLevel:{category}"] is null)
            {
                builder.Logging.AddFilter(category, LogLevel.Warning);
            }
        }
        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(_ => TopologySetup.CreateCasStore(options.Membership, options.ClusterId));
        services.AddSingleton(sp => new PlacementViewStore(sp.GetRequiredService<ICasStore>(), options.ClusterId));
        services.AddSingleton(sp => new TopologyFeed(sp.GetRequiredService<PlacementViewStore>(), sp.GetRequiredService<ILogger<TopologyFeed>>()));
        services.AddHostedService(sp => sp.GetRequiredService<TopologyFeed>());
        var transport = (builder.Configuration.GetSection(Caching.ManifestCacheOptions.Section).Get<Caching.ManifestCacheOptions>() ?? new()).Transport;
        services.AddSingleton<IByteRouter>(sp => new ObservedByteRouter(new TopologyByteRouter(sp.GetRequiredService<TopologyFeed>(), transport: transport), sp.GetRequiredService<WharfMetrics>()));
        builder.AddWharfTelemetry("wharf-gateway", $"{Environment.MachineName}/{Environment.ProcessId}");
        services.AddWharfGateway();
        if (options.Membership.IsConsul)
        {
            var url = new Uri(Tls.GatewayTls.ListenUrls(builder.Configuration).DefaultIfEmpty(Tls.GatewayTls.DefaultPlainUrl).First()
                .Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal));
            var host = builder.Configuration["Wharf:Gateway:AdvertisedAddress"] ?? (url.Host is "0.0.0.0" or "localhost" ? "127.0.0.1" : url.Host);
            services.AddConsulServiceRegistration(r =>
            {
                r.Address = new Uri(options.Membership.Address!);
                r.Token = options.Membership.Token;
                r.ServiceName = "wharf-gateway";
                r.ServiceId = $"wharf-gateway-{Environment.MachineName}-{url.Port}";
                r.ServiceAddress = host;
                r.Port = url.Port;
                r.HealthUrl = $"{url.Scheme}://{host}:{url.Port}/healthz";
                r.Tags = [options.ClusterId];
            });
        }
        Membership.Security.PeerCalls.Use(secret);
        builder.UseOrleansClient(client =>
        {
            MembershipSetup.ConfigureClient(client, options.Membership, options.ClusterId);
            if (secret is not null)
            {
                // The gateway's Orleans connections prove the secret to the silos' gateway ports.
                Membership.Security.ClusterHandshake.UseClusterHandshake(client, secret);
            }
            client.AddActivityPropagation();
            // A read whose grain is moving (its silo shutting down) is asked again, not answered 503 (issue 11).
            client.AddOutgoingGrainCallFilter<Resilience.ReadOnlyGrainCallRetry>();
            // How often the gateway re-reads the silos' gateway list (Orleans' GatewayListRefreshPeriod, ...).
            client.Configure<Orleans.Configuration.GatewayOptions>(builder.Configuration.GetSection("Wharf:Liveness"));
            client.Configure<Orleans.Configuration.ClientMessagingOptions>(m =>
                m.ResponseTimeout = builder.Configuration.GetValue("Wharf:Liveness:ResponseTimeout", TimeSpan.FromSeconds(10)));
        });

        var app = builder.Build();
        app.UseWharfTelemetry();
        app.MapWharfGateway();
        app.MapGet("/readyz", (TopologyFeed feed, IClusterClient client, HttpContext c) => GatewayReadiness.CheckAsync(feed, client, c.RequestAborted));
        return app;
    }
}
