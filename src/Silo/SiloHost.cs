using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Orleans.Configuration;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Gateway;
using Wharf.Gateway.Bytes;
using Wharf.Gateway.Caching;
using Wharf.Gateway.Observability;
using Wharf.Gateway.Tls;
using Wharf.Membership;
using Wharf.Membership.Consul;
using Wharf.Membership.Topology;
using Wharf.Silo.Admin;
using Wharf.Silo.Grains;
using Wharf.Silo.Observability;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo;

/// <summary>
/// The silo process: the store, the grains, the node's place in the placement view, and either the co-hosted gateway
/// (the all-in-one) or the gRPC byte service that gateways in other processes call (a cluster member).
/// </summary>
public static class SiloHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication? app;
        try
        {
            app = await BuildAsync(args, null, CancellationToken.None);
        }
        catch (NodeRetiredException retired)
        {
            if (retired.Options.Node.ExitWhenRemoved)
            {
                Console.WriteLine($"wharf: {retired.Message}");
                return 0;
            }
            return await RetiredHost.RunAsync(args, retired.Options, retired.Marker);
        }
        catch (Exception e) when (e is NodeIdInUseException or StackExchange.Redis.RedisConnectionException or HttpRequestException or Membership.Consul.ConsulException)
        {
            Console.Error.WriteLine($"wharf: cannot start: {e.Message}");
            return 3;
        }
        if (app is null)
        {
            return 2;
        }
        var options = app.Services.GetRequiredService<WharfOptions>();
        var retirement = app.Services.GetRequiredService<NodeRetirement>();
        // A drain ending and SIGTERM both stop the host; only the first keeps the process up as a retired node.
        var terminated = false;
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => terminated = true);
        using var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, _ => terminated = true);
        var records = app.Services.GetRequiredService<RecordStore>();
        using (var watchdog = new StopWatchdog(TimeSpan.FromSeconds(options.Node.StopTimeoutSeconds), records.Dispose,
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Wharf.Silo.Stop"), [.. app.Services.GetServices<ILoggerProvider>()]))
        {
            using var arm = app.Lifetime.ApplicationStopping.Register(watchdog.Arm);
            await app.RunAsync();
        }
        if (retirement.Marker is { } marker && !options.Node.ExitWhenRemoved && !Volatile.Read(ref terminated))
        {
            return await RetiredHost.RunAsync(args, options, marker);
        }
        return 0;
    }

    public static async Task<WebApplication?> BuildAsync(string[] args, Action<WebApplicationBuilder>? configure, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateBuilder(Wharf.Gateway.Hosting.WharfHost.Options(args));
        configure?.Invoke(builder);
        var options = builder.Configuration.GetSection(WharfOptions.Section).Get<WharfOptions>() ?? new WharfOptions();
        if (options.IsAllInOne && builder.Configuration["Wharf:Gateway:BlobCacheMiB"] is null)
        {
            // The all-in-one reads blobs from its own disk (the page cache keeps hot ones): a copy in memory saves nothing.
            builder.Configuration["Wharf:Gateway:BlobCacheMiB"] = "0";
        }
        var cacheOptions = builder.Configuration.GetSection(ManifestCacheOptions.Section).Get<ManifestCacheOptions>() ?? new ManifestCacheOptions();
        if (options.IsAllInOne && builder.Configuration.GetSection("Wharf:Cluster:BootstrapExpect").Value is null)
        {
            options.Cluster.BootstrapExpect = 1;
        }
        // R and W (DESIGN "Configuration"): a cluster keeps three copies and acknowledges after two unless told
        // otherwise; the all-in-one has one node, so one copy.
        if (builder.Configuration.GetSection("Wharf:Replication:Factor").Value is null)
        {
            options.Replication.Factor = options.IsAllInOne ? 1 : 3;
        }
        if (builder.Configuration.GetSection("Wharf:Replication:WriteQuorum").Value is null)
        {
            options.Replication.WriteQuorum = options.Replication.Factor / 2 + 1;
        }
        var problems = options.Validate()
            .Concat((builder.Configuration.GetSection(Wharf.Gateway.Auth.AuthOptions.Section).Get<Wharf.Gateway.Auth.AuthOptions>() ?? new()).Validate())
            .Concat(cacheOptions.Validate())
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
        if (problems.Count > 0)
        {
            Console.Error.WriteLine("wharf: invalid configuration: " + string.Join("; ", problems));
            return null;
        }
        ResumableHash.EnsureAvailable();
        // Calls this process makes to peers' byte services carry the secret (every channel factory reads it).
        Membership.Security.PeerCalls.Use(options.IsAllInOne ? null : secret);

        var dataPath = Path.GetFullPath(options.DataPath);
        Directory.CreateDirectory(dataPath);
        var tls = builder.Configuration.GetSection(TlsOptions.Section).Get<TlsOptions>() ?? new TlsOptions();
        if (options.IsAllInOne)
        {
            using var tlsLogs = LoggerFactory.Create(l => l.AddConsole());
            if (GatewayTls.Configure(builder, tls, Path.Combine(dataPath, "tls"), tlsLogs.CreateLogger("Wharf.Gateway.Tls")) is { } tlsProblem)
            {
                Console.Error.WriteLine("wharf: invalid configuration: " + tlsProblem);
                return null;
            }
        }
        var nodeId = NodeIdentity.LoadOrCreate(dataPath);
        // A retired node (drained and Removed) takes no lease and changes no view unless told to rejoin.
        var retired = RetiredMarker.Read(dataPath);
        if (NodeRetirement.StartOf(retired, options.Node) is NodeStart.Exit or NodeStart.Idle)
        {
            throw new NodeRetiredException(retired!, options);
        }
        var address = IPAddress.Parse(options.Node.Address);
        var httpUrls = (builder.Configuration["urls"] ?? builder.Configuration["ASPNETCORE_URLS"] ?? "http://127.0.0.1:5100")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var ports = new AutomaticPorts(address,
            [.. httpUrls.Select(u => Uri.TryCreate(WithoutWildcards(u), UriKind.Absolute, out var uri) ? uri.Port : 0), options.Orleans.SiloPort, options.Orleans.GatewayPort, options.Bytes.Port, options.Bytes.BulkPort]);
        var siloPort = options.Orleans.SiloPort == 0 ? ports.Next() : options.Orleans.SiloPort;
        var gatewayPort = options.Orleans.GatewayPort == 0 ? ports.Next() : options.Orleans.GatewayPort;
        var bytesPort = options.IsAllInOne ? 0 : options.Bytes.Port == 0 ? ports.Next() : options.Bytes.Port;
        var bulkPort = options.IsAllInOne || options.Bytes.BulkPort < 0 ? 0 : options.Bytes.BulkPort == 0 ? ports.Next() : options.Bytes.BulkPort;

        // Take the node id and a place in the view before anything serves: a second process on the same data
        // folder stops here, and grains are placed by a view that already holds this node.
        var cas = TopologySetup.CreateCasStore(options.Membership, options.ClusterId);
        var views = new PlacementViewStore(cas, options.ClusterId);
        using var bootLogs = LoggerFactory.Create(l => l.AddConsole());
        var topology = new TopologyFeed(views, bootLogs.CreateLogger<TopologyFeed>());
        var self = new NodeAnnouncement(
            nodeId.Id,
            options.Node.Zone,
            options.Node.Weight,
            options.IsAllInOne ? "" : $"http://{FormatHost(address)}:{bytesPort}",
            new IPEndPoint(address, siloPort).ToString(),
            options.Cluster.BootstrapExpect,
            options.Replication.Factor,
            options.Replication.WriteQuorum,
            bulkPort == 0 ? "" : $"http://{FormatHost(address)}:{bulkPort}");

        if (retired is null && !options.Node.Rejoin
            && await NodeRegistration.RemovedByDrainAsync(cas, views, options.ClusterId, nodeId.Id, cancellationToken) is { } removedAt)
        {
            // Drained and Removed while this process was not there to see it: retired all the same, from now on.
            var marker = new RetiredMarker(nodeId.Id, removedAt, DateTimeOffset.UtcNow);
            marker.Write(dataPath);
            throw new NodeRetiredException(marker, options);
        }

        RecordStore records;
        try
        {
            records = RecordStore.Open(Path.Combine(dataPath, "db"));
        }
        catch (RocksDbSharp.RocksDbException e)
        {
            Console.Error.WriteLine($"wharf: cannot open the store in {dataPath}: {e.Message} (is another process using this data folder?)");
            return null;
        }
        var registration = new NodeRegistration(cas, views, topology, self, options.ClusterId, bootLogs.CreateLogger<NodeRegistration>());
        try
        {
            await registration.JoinAsync(cancellationToken);
        }
        catch
        {
            records.Dispose();
            throw;
        }
        if (retired is not null)
        {
            // Wharf:Node:Rejoin: the node is in the view again (Joining), so the marker goes; a later drain writes a new one.
            RetiredMarker.Delete(dataPath);
            bootLogs.CreateLogger<NodeRetirement>().LogInformation(
                "node {NodeId} was retired (drained and Removed at placement view epoch {Epoch}) and rejoins because Wharf:Node:Rejoin is set; remove that setting once it runs", nodeId.Id, retired.Epoch);
        }

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(nodeId);
        services.AddSingleton(sp => new NodeRetirement(dataPath, nodeId.Id, sp.GetRequiredService<ILogger<NodeRetirement>>()));
        services.AddSingleton(records);
        services.AddSingleton(cas);
        services.AddSingleton(views);
        services.AddSingleton(topology);
        services.AddHostedService(_ => topology);
        services.AddHostedService(_ => registration);
        services.AddPlacementCoordinator(cas, views, topology, options.ClusterId, nodeId.Id, options.Cluster.Coordinator());
        services.AddSingleton(new LogReplica(records, ReplicatedLogs.StaleViewCheck(topology, nodeId.Id)));
        services.AddSingleton<LogMetrics>();
        services.AddSingleton(sp => new ReplicatedLogs(topology, sp.GetRequiredService<LogReplica>(), nodeId.Id, options.Replication.Timings(), sp.GetRequiredService<LogMetrics>()));
        services.AddSingleton(sp => new BlobStore(sp.GetRequiredService<RecordStore>(), dataPath, options.Node.CapacityBytes, options.Node.DirectWrites));
        services.AddSingleton<IByteService>(sp => sp.GetRequiredService<BlobStore>());
        services.AddHostedService<Maintenance.UploadJanitor>();
        services.AddSingleton<Maintenance.AuditJanitor>();
        services.AddHostedService(sp => sp.GetRequiredService<Maintenance.AuditJanitor>());
        services.AddSingleton<ScrubMetrics>();
        services.AddSingleton<Maintenance.IBlobPeers>(sp => new Maintenance.TopologyBlobPeers(topology, nodeId));
        services.AddSingleton<Maintenance.BlobScrubber>();
        services.AddHostedService(sp => sp.GetRequiredService<Maintenance.BlobScrubber>());
        services.AddSingleton<StoreMetrics>();
        services.AddSingleton<RepairMetrics>();
        services.AddSingleton<Repair.IRepairPeers, Repair.RepairPeers>();
        services.AddSingleton(new TransitionReports(cas, options.ClusterId));
        services.AddSingleton(sp => new Repair.AntiEntropy(
            sp.GetRequiredService<LogReplica>(), sp.GetRequiredService<BlobStore>(), topology, nodeId, sp.GetRequiredService<Repair.IRepairPeers>(),
            sp.GetRequiredService<RepairMetrics>(), options, sp.GetRequiredService<ILogger<Repair.AntiEntropy>>(), sp.GetRequiredService<TransitionReports>()));
        services.AddHostedService(sp => sp.GetRequiredService<Repair.AntiEntropy>());
        services.AddSingleton(sp => new TagLeasePolicy(TimeSpan.FromSeconds(cacheOptions.TagLeaseSeconds), sp.GetRequiredService<ILogger<TagLeasePolicy>>()));
        builder.AddWharfTelemetry(options.IsAllInOne ? "wharf" : "wharf-silo", nodeId.Id, StoreMetrics.MeterName, ByteServiceObservation.MeterName, LogMetrics.MeterName, ScrubMetrics.MeterName, RepairMetrics.MeterName, TagLeasePolicy.MeterName, MembershipMetrics.MeterName);

        builder.UseOrleans(silo =>
        {
            MembershipSetup.ConfigureSilo(silo, options.Membership, options.ClusterId, siloPort, gatewayPort);
            silo.Configure<EndpointOptions>(e => e.AdvertisedIPAddress = address);
            if (secret is not null && !options.IsAllInOne)
            {
                // Silo-to-silo and gateway-to-silo Orleans connections prove the secret before Orleans speaks.
                Membership.Security.ClusterHandshake.UseClusterHandshake(silo, secret);
            }
            silo.Configure<GrainCollectionOptions>(g => g.CollectionAge = TimeSpan.FromMinutes(10));
            silo.AddActivityPropagation();
            silo.Services.AddPlacementDirector<ShardOwnerPlacementStrategy, ShardOwnerPlacementDirector>();
            // Failure detection, with Orleans' own option names (ProbeTimeout, NumMissedProbesLimit,
            // NumVotesForDeathDeclaration, TableRefreshTimeout, IAmAliveTablePublishTimeout, DeathVoteExpirationTimeout).
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection("Wharf:Liveness"));
            // A call towards a silo that just died waits this long before failing (then 503), not Orleans' 30 s.
            silo.Configure<SiloMessagingOptions>(m => m.ResponseTimeout = builder.Configuration.GetValue("Wharf:Liveness:ResponseTimeout", TimeSpan.FromSeconds(10)));
        });

        Wharf.Gateway.Hosting.KestrelBlocks.Configure(builder);
        if (options.IsAllInOne)
        {
            services.AddSingleton<IByteRouter>(sp => new ObservedByteRouter(
                new TopologyByteRouter(topology, new LocalByteNode(nodeId.Id, sp.GetRequiredService<IByteService>())), sp.GetRequiredService<WharfMetrics>()));
            services.AddWharfGateway();
        }
        else
        {
            builder.WebHost.ConfigureKestrel(k =>
            {
                foreach (var url in httpUrls)
                {
                    var uri = ListenUri(url);
                    // A host name other than localhost listens on every interface, as Kestrel itself does.
                    var ip = uri.Host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(uri.Host, out var parsed) ? parsed : IPAddress.Any;
                    k.Listen(ip, uri.Port, o => o.Protocols = HttpProtocols.Http1);
                }
                // The byte service: HTTP/2 without TLS, large windows (FACTS: uploads 505–555 MB/s vs 290–410).
                k.Listen(address, bytesPort, o => o.Protocols = HttpProtocols.Http2);
                k.Limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
                k.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
                if (bulkPort != 0)
                {
                    // The bulk path beside it: HTTP/1.1, which moves bytes for a third to a half of gRPC's CPU (FACTS).
                    k.Listen(address, bulkPort, o => o.Protocols = HttpProtocols.Http1);
                }
                k.Limits.MaxRequestBodySize = null;
            });
            services.AddGrpc(g =>
            {
                g.MaxReceiveMessageSize = 8 * 1024 * 1024;
                g.MaxSendMessageSize = 8 * 1024 * 1024;
                g.Interceptors.Add<ByteServiceObservation>();
            });
            services.AddSingleton<ByteServiceObservation>();
        }

        if (options.Membership.IsConsul && !options.IsAllInOne)
        {
            // Operators and load balancers find silos in Consul's catalog, checked on /healthz.
            var httpPort = ListenUri(httpUrls[0]).Port;
            services.AddConsulServiceRegistration(r =>
            {
                r.Address = new Uri(options.Membership.Address!);
                r.Token = options.Membership.Token;
                r.ServiceName = "wharf-silo";
                r.ServiceId = $"wharf-silo-{nodeId.Id}";
                r.ServiceAddress = options.Node.Address;
                r.Port = httpPort;
                r.HealthUrl = $"http://{FormatHost(address)}:{httpPort}/healthz";
                r.Tags = [options.ClusterId];
                r.Meta = new Dictionary<string, string> { ["node"] = nodeId.Id, ["bytes"] = self.ByteEndpoint, ["bulk"] = self.BulkEndpoint, ["silo"] = self.SiloEndpoint };
            });
        }

        var app = builder.Build();
        if (!options.IsAllInOne && tls.IsEnabled)
        {
            app.Logger.LogWarning("Wharf:Tls is ignored on a silo: it serves the registry API only in the all-in-one and the gateway process");
        }
        app.Logger.LogInformation(
            "wharf {Role}: node {NodeId}, data in {DataPath}, silo port {SiloPort}{Bytes}",
            options.IsAllInOne ? "all-in-one" : "silo", nodeId.Id, dataPath, siloPort, options.IsAllInOne ? "" : $", byte service {self.ByteEndpoint}");
        var blobs = app.Services.GetRequiredService<BlobStore>();
        app.Logger.LogInformation(
            "blob files are written {How}",
            blobs.DirectWrites ? "with direct I/O" : options.Node.DirectWrites ? "through the page cache: the filesystem refused direct I/O" : "through the page cache (Wharf:Node:DirectWrites=false)");
        app.Lifetime.ApplicationStopped.Register(records.Dispose);
        app.Services.GetRequiredService<StoreMetrics>();
        app.UseWharfTelemetry();
        if (secret is not null)
        {
            app.UseClusterSecret(secret, bytesPort, bulkPort);
        }
        else if (!options.IsAllInOne)
        {
            app.Logger.LogWarning("no Wharf:Cluster:Secret: anyone who reaches this silo's byte service ({Bytes}) and admin endpoints can read, write and delete blobs; set one on every silo and gateway (docs/security.md)", self.ByteEndpoint);
        }
        if (options.IsAllInOne)
        {
            app.MapWharfGateway();
        }
        else
        {
            app.MapGrpcService<ByteServiceEndpoint>().RequireHost($"*:{bytesPort}");
            if (bulkPort != 0)
            {
                app.MapBulkBytes(bulkPort);
            }
            app.MapGrpcService<RecordServiceEndpoint>().RequireHost($"*:{bytesPort}");
            app.MapGrpcService<Repair.RepairServiceEndpoint>().RequireHost($"*:{bytesPort}");
            app.MapGet("/healthz", () => Results.Text("ok"));
        }
        app.MapGet("/admin/cluster", (TopologyFeed feed, IClusterMembershipService membership) => Results.Json(new
        {
            node = nodeId.Id,
            view = feed.Current,
            members = membership.CurrentSnapshot.Members.Values
                .Select(m => new { address = m.SiloAddress.ToString(), endpoint = m.SiloAddress.Endpoint.ToString(), status = m.Status.ToString(), name = m.Name }),
        }));
        app.MapClusterAdmin(cas, views, topology, options.ClusterId);
        app.MapGet("/admin/scrub", (Maintenance.BlobScrubber scrubber) => Results.Json(new
        {
            node = nodeId.Id,
            enabled = options.Scrub.Enabled,
            bytesPerSecond = options.Scrub.BytesPerSecond,
            lastPass = scrubber.LastPass,
        }));
        app.MapGet("/admin/audit", (HttpContext c, IGrainFactory g) => Wharf.Gateway.Audit.AuditQuery.HandleAsync(c, g));
        app.MapGet("/admin/repair", (Repair.AntiEntropy repair) => Results.Json(RepairStatus(nodeId.Id, options.Repair, repair)));
        // Runs a pass now (after one in progress) and answers with it: operators after an incident, and tests.
        app.MapPost("/admin/repair", async (Repair.AntiEntropy repair, HttpContext context) =>
        {
            var verify = context.Request.Query["verify"] is [{ } v] && bool.TryParse(v, out var b) ? b : (bool?)null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(TimeSpan.FromMinutes(10));
            await repair.RunPassAsync(verify, timeout.Token);
            return Results.Json(RepairStatus(nodeId.Id, options.Repair, repair));
        });
        app.MapGet("/readyz", (RecordStore store, TopologyFeed feed, IClusterMembershipService membership, ILocalSiloDetails silo, MembershipBackendHealth backend) =>
            SiloReadiness.Check(store, feed, nodeId, membership, silo, backend));
        return app;
    }

    private static object RepairStatus(string node, RepairOptions options, Repair.AntiEntropy repair) => new
    {
        node,
        enabled = options.Enabled,
        interval = options.Interval,
        verifyInterval = options.VerifyInterval,
        bytesPerSecond = options.BytesPerSecond,
        bytesMoved = repair.TotalBytesMoved,
        copies = repair.TotalCopies,
        lastPass = repair.LastPass,
    };

    /// <summary>A Kestrel URL with its wildcards (<c>*</c>, <c>+</c>) as 0.0.0.0, so that <see cref="Uri"/> parses it.</summary>
    private static Uri ListenUri(string url) => new(WithoutWildcards(url));

    private static string WithoutWildcards(string url) =>
        url.Trim().Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal);

    private static string FormatHost(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
}
