namespace Wharf.Membership.Topology;

/// <summary>
/// Whether this process reached the membership backend on its last try (the coordinator tries every tick). While it
/// cannot, the process keeps serving on the last placement view it saw; /readyz and a gauge say so.
/// </summary>
public sealed class MembershipBackendHealth
{
    private readonly Lock _lock = new();
    private DateTimeOffset? _unreachableSince;
    private string _reason = "";

    public bool IsUp
    {
        get
        {
            lock (_lock)
            {
                return _unreachableSince is null;
            }
        }
    }

    /// <summary>When the outage began and its first error, or null while the backend answers.</summary>
    public (DateTimeOffset Since, string Reason)? Outage
    {
        get
        {
            lock (_lock)
            {
                return _unreachableSince is { } since ? (since, _reason) : null;
            }
        }
    }

    /// <summary>True when this begins an outage (the caller logs it once).</summary>
    public bool MarkUnreachable(DateTimeOffset now, string reason)
    {
        lock (_lock)
        {
            if (_unreachableSince is not null)
            {
                return false;
            }
            _unreachableSince = now;
            _reason = reason;
            return true;
        }
    }

    /// <summary>How long the outage that just ended lasted, or null when there was none.</summary>
    public TimeSpan? MarkReachable(DateTimeOffset now)
    {
        lock (_lock)
        {
            var since = _unreachableSince;
            _unreachableSince = null;
            return since is { } s ? now - s : null;
        }
    }
}
