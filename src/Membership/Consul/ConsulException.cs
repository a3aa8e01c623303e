using System.Net;

namespace Wharf.Membership.Consul;

/// <summary>Consul answered something other than what the call expects (a refused token, a server error).</summary>
public class ConsulException(string message, HttpStatusCode? status = null, Exception? inner = null) : Exception(message, inner)
{
    public HttpStatusCode? Status { get; } = status;
}

/// <summary>Consul could not be reached at all (connection refused, no route, timed out).</summary>
public sealed class ConsulUnreachableException(string message, Exception? inner = null) : ConsulException(message, null, inner);
