namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>An HTTP client per gateway of a cluster, with a timeout well above any answer's bound, so a hang shows as one.</summary>
public sealed class GatewayClients(ClusterProcesses cluster) : IDisposable
{
    public IReadOnlyList<HttpClient> All { get; } =
        [.. cluster.Gateways.Select(g => new HttpClient { BaseAddress = g.BaseAddress, Timeout = TimeSpan.FromSeconds(30) })];

    public void Dispose()
    {
        foreach (var http in All)
        {
            http.Dispose();
        }
    }
}
