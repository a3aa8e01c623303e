namespace Wharf.Membership;

/// <summary>
/// <c>Wharf:Membership</c>: which backend keeps the cluster's membership (Orleans' table, the gateways' list) and
/// how to reach it. <c>Consul</c> (production), <c>Redis</c>, or <c>Localhost</c> (one process, no external service).
/// </summary>
public sealed class MembershipOptions
{
    public const string Section = "Wharf:Membership";

    public const string Consul = "Consul";
    public const string Redis = "Redis";
    public const string Localhost = "Localhost";

    public string Provider { get; set; } = Localhost;

    /// <summary>Consul: the agent's HTTP address (<c>http://127.0.0.1:8500</c>). Redis: <c>host:port</c> or a StackExchange.Redis configuration string.</summary>
    public string? Address { get; set; }

    /// <summary>Consul: the ACL token (<c>X-Consul-Token</c>). Redis: the AUTH password.</summary>
    public string? Token { get; set; }

    public bool IsConsul => string.Equals(Provider, Consul, StringComparison.OrdinalIgnoreCase);

    public bool IsRedis => string.Equals(Provider, Redis, StringComparison.OrdinalIgnoreCase);

    public bool IsLocalhost => string.Equals(Provider, Localhost, StringComparison.OrdinalIgnoreCase);

    /// <summary>Every problem with these settings, each as one line naming the key; none when they are usable.</summary>
    public IEnumerable<string> Validate()
    {
        if (!IsConsul && !IsRedis && !IsLocalhost)
        {
            yield return $"Wharf:Membership:Provider must be Consul, Redis or Localhost, not '{Provider}'";
            yield break;
        }
        if (IsConsul && !(Uri.TryCreate(Address, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)))
        {
            yield return $"Wharf:Membership:Address must be Consul's http(s) address (e.g. http://127.0.0.1:8500), not '{Address}'";
        }
        if (IsRedis && string.IsNullOrWhiteSpace(Address))
        {
            yield return "Wharf:Membership:Address must name the Redis server (e.g. 127.0.0.1:6379)";
        }
    }
}
