using System.Net;
using Microsoft.AspNetCore.Http;

namespace Wharf.Gateway.Auth;

/// <summary>
/// The registry's public URL as the client sees it. Behind a TLS-terminating load balancer the request arrives as
/// plain HTTP to an inner address, so <c>X-Forwarded-Proto</c> / <c>X-Forwarded-Host</c> say what the client used —
/// believed only from <c>Wharf:Auth:TrustedProxies</c>, since anyone else could send them to redirect a client's
/// credentials to a realm of their choosing.
/// </summary>
public sealed class TrustedProxyList(IEnumerable<string> entries)
{
    private readonly IPNetwork[] _networks = [.. entries.Select(e => TryParse(e, out var n) ? n : throw new FormatException(e))];

    public static bool TryParse(string text, out IPNetwork network)
    {
        if (IPAddress.TryParse(text, out var address))
        {
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }
        return IPNetwork.TryParse(text, out network);
    }

    public bool IsTrusted(IPAddress? remote)
    {
        if (remote is null)
        {
            return false;
        }
        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }
        foreach (var n in _networks)
        {
            if (n.Contains(remote))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary><c>scheme://host[:port]</c> of the request, forwarded values taken only from a trusted proxy.</summary>
    public string PublicBase(HttpContext context)
    {
        var request = context.Request;
        var scheme = request.Scheme;
        var host = request.Host.Value ?? "localhost";
        if (_networks.Length > 0 && IsTrusted(context.Connection.RemoteIpAddress))
        {
            // The first value is the one the client's own connection reached (a chain appends towards us).
            var proto = First(request.Headers["X-Forwarded-Proto"]);
            if (proto is "http" or "https")
            {
                scheme = proto;
            }
            var forwardedHost = First(request.Headers["X-Forwarded-Host"]);
            if (forwardedHost is not null && HostString.FromUriComponent(forwardedHost) is { HasValue: true } h
                && Uri.CheckHostName(h.Host) != UriHostNameType.Unknown)
            {
                host = h.Value!;
            }
        }
        return $"{scheme}://{host}";
    }

    private static string? First(Microsoft.Extensions.Primitives.StringValues values)
    {
        var text = values.ToString();
        if (text.Length == 0)
        {
            return null;
        }
        var comma = text.IndexOf(',');
        return (comma >= 0 ? text[..comma] : text).Trim();
    }
}
