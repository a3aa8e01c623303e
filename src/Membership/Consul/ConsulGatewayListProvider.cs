using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Messaging;
using Orleans.Runtime;

namespace Wharf.Membership.Consul;

/// <summary>An Orleans client's list of gateways: the active silos in the Consul membership table that have a gateway port.</summary>
public sealed class ConsulGatewayListProvider : IGatewayListProvider, IDisposable
{
    private readonly ConsulClient _consul;
    private readonly ConsulSiloRows _rows;

    public ConsulGatewayListProvider(IOptions<ConsulClusteringOptions> options, IOptions<GatewayOptions> gateway, IOptions<ClusterOptions> cluster)
    {
        _consul = options.Value.CreateClient();
        _rows = new ConsulSiloRows(cluster.Value.ClusterId, options.Value.KvRootFolder);
        MaxStaleness = gateway.Value.GatewayListRefreshPeriod;
    }

    public TimeSpan MaxStaleness { get; }

    public bool IsUpdatable => true;

    /// <summary>Reads the table once, so a client with no reachable Consul fails at start with a clear error.</summary>
    public Task InitializeGatewayListProvider() => GetGatewaysAsync(CancellationToken.None);

    public Task InitializeGatewayListProviderAsync(CancellationToken cancellationToken) => GetGatewaysAsync(cancellationToken);

    public Task<IList<Uri>> GetGateways() => GetGatewaysAsync(CancellationToken.None);

    public async Task<IList<Uri>> GetGatewaysAsync(CancellationToken cancellationToken)
    {
        var result = await _consul.ListAsync(_rows.Prefix, cancellationToken: cancellationToken);
        return _rows.Assemble(result.Pairs).Members
            .Select(m => m.Item1)
            .Where(m => m.Status == SiloStatus.Active && m.ProxyPort != 0)
            .Select(m => SiloAddress.New(m.SiloAddress.Endpoint.Address, m.ProxyPort, m.SiloAddress.Generation).ToGatewayUri())
            .ToList();
    }

    public void Dispose() => _consul.Dispose();
}
