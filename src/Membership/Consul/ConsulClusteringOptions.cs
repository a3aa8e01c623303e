using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;

namespace Wharf.Membership.Consul;

/// <summary>Where the membership table lives in Consul and how to reach it.</summary>
public sealed class ConsulClusteringOptions
{
    /// <summary>The Consul agent's HTTP address, e.g. <c>http://127.0.0.1:8500</c>.</summary>
    public Uri? Address { get; set; }

    /// <summary>The ACL token sent as <c>X-Consul-Token</c>; none when empty.</summary>
    public string? Token { get; set; }

    /// <summary>An optional folder above Orleans' <c>orleans/{clusterId}/</c> keys (Orleans' <c>KvRootFolder</c>).</summary>
    public string? KvRootFolder { get; set; }

    /// <summary>The longest a non-blocking request may take before it fails.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest opening a connection to Consul may take before it fails.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    internal ConsulClient CreateClient() =>
        new(Address ?? throw new OrleansConfigurationException("ConsulClusteringOptions.Address is required"), Token, RequestTimeout, ConnectTimeout);
}

/// <summary>Checked by Orleans at start: a silo or client with a bad Consul setting does not start.</summary>
public sealed class ConsulClusteringOptionsValidator(IOptions<ConsulClusteringOptions> options) : IConfigurationValidator
{
    public void ValidateConfiguration()
    {
        var o = options.Value;
        if (o.Address is null || !o.Address.IsAbsoluteUri || (o.Address.Scheme != Uri.UriSchemeHttp && o.Address.Scheme != Uri.UriSchemeHttps))
        {
            throw new OrleansConfigurationException($"Consul clustering needs an absolute http(s) Address, not '{o.Address}'");
        }
        if (o.RequestTimeout <= TimeSpan.Zero || o.ConnectTimeout <= TimeSpan.Zero)
        {
            throw new OrleansConfigurationException("Consul clustering's RequestTimeout and ConnectTimeout must be positive");
        }
    }
}
