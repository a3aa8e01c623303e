namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>
/// One cluster of separate processes shared by a collection: redis-server, three silos and two gateways (A and B),
/// with private client configuration and a scratch folder. Tests in this collection never stop or kill a process.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    private ClusterProcesses? cluster;

    public ClusterProcesses Cluster => cluster ?? throw new InvalidOperationException("not started");
    public ContainerTools Tools { get; } = new();
    public string Scratch { get; } = TempFolders.Create("wharf-e2e-scratch-");

    public RegistryProcess GatewayA => Cluster.Gateways[0];
    public RegistryProcess GatewayB => Cluster.Gateways[1];
    public HttpClient A { get; private set; } = null!;
    public HttpClient B { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        cluster = await ClusterProcesses.StartAsync(siloCount: 3, gatewayCount: 2, limit.Token);
        A = new HttpClient { BaseAddress = GatewayA.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        B = new HttpClient { BaseAddress = GatewayB.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>A new, empty folder for one test.</summary>
    public string NewFolder(string name) => Directory.CreateDirectory(Path.Combine(Scratch, $"{name}-{Guid.NewGuid():N}")).FullName;

    public async ValueTask DisposeAsync()
    {
        A?.Dispose();
        B?.Dispose();
        if (cluster is not null)
        {
            await cluster.DisposeAsync();
        }
        Tools.Dispose();
        TempFolders.TryDelete(Scratch);
    }
}

[CollectionDefinition(Name)]
public sealed class SharedCluster : ICollectionFixture<ClusterFixture>
{
    public const string Name = "shared cluster (3 silos, 2 gateways, Redis)";
}
