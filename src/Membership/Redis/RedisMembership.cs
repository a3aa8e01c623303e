using Microsoft.Extensions.Hosting;
using Orleans.Hosting;
using StackExchange.Redis;

namespace Wharf.Membership.Redis;

/// <summary>Orleans' own Redis clustering (<c>Microsoft.Orleans.Clustering.Redis</c>) with Wharf's address and AUTH password.</summary>
public static class RedisMembership
{
    public static ISiloBuilder UseRedisMembership(this ISiloBuilder silo, string address, string? password) =>
        silo.UseRedisClustering(o => o.ConfigurationOptions = Configuration(address, password));

    public static IClientBuilder UseRedisMembership(this IClientBuilder client, string address, string? password) =>
        client.UseRedisClustering(o => o.ConfigurationOptions = Configuration(address, password));

    /// <summary>
    /// Connecting fails fast (a few seconds) rather than retrying in the background, so an unreachable Redis stops
    /// a silo or client at start with StackExchange.Redis' own clear message.
    /// </summary>
    public static ConfigurationOptions Configuration(string address, string? password)
    {
        var options = ConfigurationOptions.Parse(address);
        if (!string.IsNullOrEmpty(password))
        {
            options.Password = password;
        }
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5000;
        options.ConnectRetry = 1;
        return options;
    }
}
