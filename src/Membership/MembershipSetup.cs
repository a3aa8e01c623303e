using Orleans.Configuration;
using Orleans.Hosting;
using Wharf.Membership.Consul;
using Wharf.Membership.Localhost;
using Wharf.Membership.Redis;

namespace Wharf.Membership;

/// <summary>The one place both hosts choose their membership backend from <see cref="MembershipOptions"/>.</summary>
public static class MembershipSetup
{
    /// <summary>
    /// Configures a silo's cluster identity, ports and membership table. The ports must be real (not 0): Orleans'
    /// defaults 11111/30000 collide between processes on one machine.
    /// </summary>
    public static ISiloBuilder ConfigureSilo(ISiloBuilder silo, MembershipOptions options, string clusterId, int siloPort, int gatewayPort)
    {
        ThrowIfInvalid(options);
        if (options.IsLocalhost)
        {
            return silo.UseLocalhostMembership(clusterId, siloPort, gatewayPort);
        }
        silo.Configure<ClusterOptions>(c => (c.ClusterId, c.ServiceId) = (clusterId, clusterId));
        silo.Configure<EndpointOptions>(e => (e.SiloPort, e.GatewayPort) = (siloPort, gatewayPort));
        return options.IsConsul
            ? silo.UseConsulClustering(c => (c.Address, c.Token) = (new Uri(options.Address!), options.Token))
            : silo.UseRedisMembership(options.Address!, options.Token);
    }

    /// <summary>Configures an Orleans client (the gateway's) to find the cluster's gateways through the same backend.</summary>
    public static IClientBuilder ConfigureClient(IClientBuilder client, MembershipOptions options, string clusterId, int localhostGatewayPort = 0)
    {
        ThrowIfInvalid(options);
        if (options.IsLocalhost)
        {
            return client.UseLocalhostMembership(clusterId, localhostGatewayPort);
        }
        client.Configure<ClusterOptions>(c => (c.ClusterId, c.ServiceId) = (clusterId, clusterId));
        return options.IsConsul
            ? client.UseConsulClustering(c => (c.Address, c.Token) = (new Uri(options.Address!), options.Token))
            : client.UseRedisMembership(options.Address!, options.Token);
    }

    private static void ThrowIfInvalid(MembershipOptions options)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            throw new ArgumentException("invalid membership configuration: " + string.Join("; ", problems), nameof(options));
        }
    }
}
