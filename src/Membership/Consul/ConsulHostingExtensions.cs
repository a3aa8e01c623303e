using Microsoft.Extensions.DependencyInjection;
using Orleans;
using Orleans.Hosting;
using Orleans.Messaging;

namespace Wharf.Membership.Consul;

public static class ConsulHostingExtensions
{
    /// <summary>Silos keep Orleans' membership table in Consul.</summary>
    public static ISiloBuilder UseConsulClustering(this ISiloBuilder silo, Action<ConsulClusteringOptions> configure)
    {
        silo.Services.Configure(configure);
        silo.Services.AddSingleton<IConfigurationValidator, ConsulClusteringOptionsValidator>();
        silo.Services.AddSingleton<IMembershipTable, ConsulMembershipTable>();
        return silo;
    }

    /// <summary>Registers the process as a Consul service while the host runs (see <see cref="ConsulServiceRegistration"/>).</summary>
    public static IServiceCollection AddConsulServiceRegistration(this IServiceCollection services, Action<ConsulServiceRegistrationOptions> configure)
    {
        services.Configure(configure);
        services.AddHostedService<ConsulServiceRegistration>();
        return services;
    }

    /// <summary>Orleans clients find gateways in the Consul membership table.</summary>
    public static IClientBuilder UseConsulClustering(this IClientBuilder client, Action<ConsulClusteringOptions> configure)
    {
        client.Services.Configure(configure);
        client.Services.AddSingleton<IConfigurationValidator, ConsulClusteringOptionsValidator>();
        client.Services.AddSingleton<IGatewayListProvider, ConsulGatewayListProvider>();
        return client;
    }
}
