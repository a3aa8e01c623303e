using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace Wharf.Membership.Security;

/// <summary>
/// The secret every member of one cluster shares (<c>Wharf:Cluster:Secret</c>, or a file named by
/// <c>Wharf:Cluster:SecretFile</c>, mounted like any secret). With one set, a silo serves its byte service and admin
/// endpoints only to callers that present it, and its Orleans ports only to peers that prove they hold it
/// (<see cref="ClusterHandshake"/>). It authenticates; it does not encrypt (docs/security.md).
/// </summary>
public sealed class ClusterSecret
{
    /// <summary>The header byte-service (gRPC) and admin calls carry the secret in.</summary>
    public const string Header = "wharf-cluster-secret";

    public const int MinLength = 32;

    private readonly byte[] _hash;

    public ClusterSecret(string secret)
    {
        if (secret.Length < MinLength)
        {
            throw new ArgumentException($"the cluster secret must be at least {MinLength} characters (e.g. `openssl rand -base64 48`)", nameof(secret));
        }
        Value = secret;
        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
        Key = HMACSHA256.HashData(_hash, "wharf-cluster-handshake-v1"u8);
    }

    /// <summary>The secret as configured, to send in <see cref="Header"/>.</summary>
    public string Value { get; }

    /// <summary>The key the Orleans handshake's proofs are made with (derived, never the secret itself).</summary>
    internal byte[] Key { get; }

    /// <summary>Whether a presented value is the secret, in time that does not depend on where they differ.</summary>
    public bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(_hash, SHA256.HashData(Encoding.UTF8.GetBytes(presented)));

    /// <summary>The configured secret, or null when none is (the all-in-one, or a cluster trusting its network).</summary>
    /// <exception cref="ArgumentException">A secret that is too short, or a file that cannot be read.</exception>
    public static ClusterSecret? From(IConfiguration configuration)
    {
        var secret = configuration["Wharf:Cluster:Secret"];
        var file = configuration["Wharf:Cluster:SecretFile"];
        if (string.IsNullOrEmpty(secret) && !string.IsNullOrEmpty(file))
        {
            try
            {
                secret = File.ReadAllText(file).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"Wharf:Cluster:SecretFile {file}: {e.Message}");
            }
        }
        return string.IsNullOrEmpty(secret) ? null : new ClusterSecret(secret);
    }

    /// <summary>An HTTP handler for calls to peers' byte services that adds the secret to every request.</summary>
    public HttpMessageHandler Wrap(HttpMessageHandler inner) => new AddHeader(Value) { InnerHandler = inner };

    private sealed class AddHeader(string value) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation(Header, value);
            return base.SendAsync(request, cancellationToken);
        }
    }
}

/// <summary>
/// The process's cluster secret for its outgoing peer calls. The channel factories of the byte service (gateway
/// and silo alike) build channels from static helpers, so the host sets this once at start, before any call.
/// </summary>
public static class PeerCalls
{
    private static ClusterSecret? _secret;

    public static void Use(ClusterSecret? secret) => _secret = secret;

    /// <summary>The handler for a channel to a peer's byte service: with the secret when one is configured.</summary>
    public static HttpMessageHandler Handler(SocketsHttpHandler inner) => _secret is { } s ? s.Wrap(inner) : inner;
}
