namespace Wharf.Contracts.Grains;

/// <summary>
/// The grain's node no longer owns its log (owners moved: docs/architecture.md "View changes"): the activation goes,
/// and the call did nothing, so the caller may send it again at once — the next activation is placed on an owner.
/// The gateway retries it; a caller that gives up answers 503 UNAVAILABLE with Retry-After.
/// </summary>
[GenerateSerializer, Alias("wharf.grain-moved.v1")]
public sealed class GrainMovedException : Exception
{
    public GrainMovedException()
    {
    }

    public GrainMovedException(string message) : base(message)
    {
    }

    public GrainMovedException(string message, Exception inner) : base(message, inner)
    {
    }
}
