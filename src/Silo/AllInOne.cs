using System.Net;
using System.Net.Sockets;
using Orleans.Configuration;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Gateway;
using Wharf.Silo.Storage;

namespace Wharf.Silo;

/// <summary>
/// The embedded default: one process with a silo, the gateway co-hosted, localhost membership, R = W = 1 and all
/// data under one folder. The gateway reaches bytes only through <see cref="IByteService"/>, in-process here.
/// </summary>
public static class AllInOne
{
    public static async Task<int> RunAsync(string[] args)
    {
        var app = Build(args);
        if (app is null)
        {
            return 2;
        }
        await app.RunAsync();
        return 0;
    }

    /// <summary>Builds the host; null (after one clear log line) when the configuration is invalid.</summary>
    public static WebApplication? Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls("http://127.0.0.1:5000");
        }
        configure?.Invoke(builder);
        var options = builder.Configuration.GetSection(WharfOptions.Section).Get<WharfOptions>() ?? new WharfOptions();
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            Console.Error.WriteLine("wharf: invalid configuration: " + string.Join("; ", problems));
            return null;
        }
        ResumableHash.EnsureAvailable();

        var dataPath = Path.GetFullPath(options.DataPath);
        Directory.CreateDirectory(dataPath);
        var nodeId = NodeIdentity.LoadOrCreate(dataPath);
        RecordStore records;
        try
        {
            records = RecordStore.Open(Path.Combine(dataPath, "db"));
        }
        catch (RocksDbSharp.RocksDbException e)
        {
            // Most often another live process holds db/LOCK on this data folder: refuse to start, clearly (principle 3).
            Console.Error.WriteLine($"wharf: cannot open the store in {dataPath} (is another Wharf process using this data folder?): {e.Message}");
            return null;
        }
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(nodeId);
        builder.Services.AddSingleton(records);
        builder.Services.AddSingleton<IRepositoryLog, LocalRepositoryLog>();
        builder.Services.AddSingleton(sp => new BlobStore(sp.GetRequiredService<RecordStore>(), dataPath));
        builder.Services.AddSingleton<IByteService>(sp => sp.GetRequiredService<BlobStore>());
        builder.Services.AddWharfGateway();

        var siloPort = options.Orleans.SiloPort == 0 ? FreePort() : options.Orleans.SiloPort;
        var gatewayPort = options.Orleans.GatewayPort == 0 ? FreePort() : options.Orleans.GatewayPort;
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: options.ClusterId, clusterId: options.ClusterId);
            silo.Configure<EndpointOptions>(e => e.AdvertisedIPAddress = IPAddress.Loopback);
            silo.Configure<GrainCollectionOptions>(g => g.CollectionAge = TimeSpan.FromMinutes(10));
        });

        var app = builder.Build();
        app.Logger.LogInformation("wharf all-in-one: node {NodeId}, data in {DataPath}, R = W = 1", nodeId.Id, dataPath);
        app.Lifetime.ApplicationStopped.Register(records.Dispose);
        app.MapWharfGateway();
        return app;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
