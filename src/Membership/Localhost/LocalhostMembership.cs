using System.Net;
using Orleans.Hosting;

namespace Wharf.Membership.Localhost;

/// <summary>Membership for one process (the all-in-one) or a handful on one machine: no external service.</summary>
public static class LocalhostMembership
{
    public static ISiloBuilder UseLocalhostMembership(this ISiloBuilder silo, string clusterId, int siloPort, int gatewayPort, IPEndPoint? primarySilo = null) =>
        silo.UseLocalhostClustering(siloPort, gatewayPort, primarySilo, serviceId: clusterId, clusterId: clusterId);

    public static IClientBuilder UseLocalhostMembership(this IClientBuilder client, string clusterId, int gatewayPort) =>
        client.UseLocalhostClustering(gatewayPort, serviceId: clusterId, clusterId: clusterId);
}
