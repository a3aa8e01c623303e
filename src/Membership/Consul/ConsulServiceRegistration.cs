using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Wharf.Membership.Consul;

/// <summary>How a process (silo or gateway) appears in Consul's service catalog.</summary>
public sealed class ConsulServiceRegistrationOptions
{
    public Uri? Address { get; set; }

    public string? Token { get; set; }

    /// <summary>The service's name in the catalog, e.g. <c>wharf-silo</c> or <c>wharf-gateway</c>.</summary>
    public string ServiceName { get; set; } = "";

    /// <summary>Unique per process; a restart with the same id replaces the old registration.</summary>
    public string ServiceId { get; set; } = "";

    /// <summary>The address other hosts reach this process at.</summary>
    public string ServiceAddress { get; set; } = "127.0.0.1";

    public int Port { get; set; }

    public List<string> Tags { get; set; } = [];

    public Dictionary<string, string> Meta { get; set; } = [];

    /// <summary>The full URL Consul's HTTP check polls, e.g. <c>http://10.0.0.5:5000/healthz</c>.</summary>
    public string HealthUrl { get; set; } = "";

    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Consul removes a registration whose check stays critical this long (a process killed without deregistering).</summary>
    public TimeSpan DeregisterCriticalAfter { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Registers this process as a Consul service with an HTTP health check when the host starts, and deregisters it when
/// the host stops. A process killed outright is removed by Consul after <see cref="ConsulServiceRegistrationOptions.DeregisterCriticalAfter"/>.
/// </summary>
public sealed class ConsulServiceRegistration(IOptions<ConsulServiceRegistrationOptions> options, ILogger<ConsulServiceRegistration> logger)
    : IHostedService, IDisposable
{
    private readonly ConsulServiceRegistrationOptions _options = options.Value;
    private readonly ConsulClient _consul = new(
        options.Value.Address ?? throw new ArgumentException("Consul service registration needs Consul's Address", nameof(options)),
        options.Value.Token);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await _consul.RegisterServiceAsync(new ConsulAgentService
        {
            Id = _options.ServiceId,
            Name = _options.ServiceName,
            Address = _options.ServiceAddress,
            Port = _options.Port,
            Tags = _options.Tags,
            Meta = _options.Meta,
            Check = new ConsulAgentCheck
            {
                Http = _options.HealthUrl,
                Interval = Duration(_options.CheckInterval),
                Timeout = Duration(_options.CheckInterval / 2),
                DeregisterCriticalServiceAfter = Duration(_options.DeregisterCriticalAfter),
            },
        }, cancellationToken);
        logger.LogInformation("Registered {ServiceId} as Consul service {ServiceName} at {Address}:{Port}, checked at {HealthUrl}",
            _options.ServiceId, _options.ServiceName, _options.ServiceAddress, _options.Port, _options.HealthUrl);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _consul.DeregisterServiceAsync(_options.ServiceId, cancellationToken);
        }
        catch (ConsulException e)
        {
            // Shutting down goes on: Consul drops the registration once its check has been critical long enough.
            logger.LogWarning("Could not deregister {ServiceId} from Consul: {Error}", _options.ServiceId, e.Message);
        }
    }

    public void Dispose() => _consul.Dispose();

    private static string Duration(TimeSpan t) => Math.Max(1, (long)t.TotalMilliseconds) + "ms";
}
