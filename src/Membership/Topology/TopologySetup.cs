using StackExchange.Redis;
using Wharf.Membership.Consul;
using Wharf.Membership.Redis;

namespace Wharf.Membership.Topology;

/// <summary>Opens the compare-and-set store of the configured membership backend (the same one Orleans uses).</summary>
public static class TopologySetup
{
    public static ICasStore CreateCasStore(MembershipOptions options, string clusterId)
    {
        if (options.IsConsul)
        {
            return new ConsulCasStore(new ConsulClient(new Uri(options.Address!), options.Token));
        }
        if (options.IsRedis)
        {
            return new RedisCasStore(ConnectionMultiplexer.Connect(RedisMembership.Configuration(options.Address!, options.Token)));
        }
        // Localhost is one process: its view and leases are private to the host that opens them.
        return new LocalCasStore();
    }
}
