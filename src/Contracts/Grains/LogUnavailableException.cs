namespace Wharf.Contracts.Grains;

/// <summary>
/// A replicated log cannot serve: fewer than W of its owners answered, or its leader was deposed by a newer ballot
/// (DESIGN principles 4 and 5). Crosses Orleans to the gateway, which answers 503 UNAVAILABLE with Retry-After.
/// </summary>
[GenerateSerializer, Alias("wharf.log-unavailable.v1")]
public sealed class LogUnavailableException : Exception
{
    public LogUnavailableException()
    {
    }

    public LogUnavailableException(string message) : base(message)
    {
    }

    public LogUnavailableException(string message, Exception inner) : base(message, inner)
    {
    }
}
