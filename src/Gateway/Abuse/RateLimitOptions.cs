namespace Wharf.Gateway.Abuse;

/// <summary>
/// <c>Wharf:RateLimits</c>: token buckets per caller and class of request, and the cap on a caller's concurrent
/// uploads. A caller is its identity when it has one (Basic or Token modes), else its address. Each gateway counts
/// on its own: with N gateways behind a balancer a caller gets up to N times a limit. 0 means no limit.
/// </summary>
public sealed class RateLimitOptions
{
    public const string Section = "Wharf:RateLimits";

    /// <summary>GET and HEAD of manifests.</summary>
    public RateClass ManifestReads { get; set; } = new();

    /// <summary>GET and HEAD of blobs.</summary>
    public RateClass BlobReads { get; set; } = new();

    /// <summary><c>/v2/</c>, tags, catalog and referrers.</summary>
    public RateClass Listings { get; set; } = new();

    /// <summary>Every POST, PATCH, PUT and DELETE.</summary>
    public RateClass Writes { get; set; } = new();

    /// <summary>Requests to <c>/auth/token</c>, per address.</summary>
    public RateClass Tokens { get; set; } = new();

    /// <summary>
    /// Refused passwords per user name at one client address (and 10 times as many per address for all users): once
    /// a bucket is empty further attempts answer 429 without being checked, until it refills. On by default: 20 at
    /// once (a client such as ctr retries a refused login several times), then one every 3 s.
    /// </summary>
    public RateClass FailedLogins { get; set; } = new() { PerSecond = 1.0 / 3, Burst = 20 };

    /// <summary>Upload requests (PATCH, PUT and POST with a body) one caller may have streaming at once; 0: no cap.</summary>
    public int ConcurrentUploads { get; set; }

    public IEnumerable<string> Validate()
    {
        foreach (var (name, c) in Classes())
        {
            if (c.PerSecond < 0 || c.Burst < 0 || double.IsNaN(c.PerSecond) || c.PerSecond > 1_000_000)
            {
                yield return $"{Section}:{name}: PerSecond must be in [0, 1000000] and Burst ≥ 0";
            }
            else if (c.PerSecond > 0 && c.Burst == 0)
            {
                // A bucket that holds nothing refuses everything; say so rather than lock every caller out.
                yield return $"{Section}:{name}: Burst must be ≥ 1 when PerSecond is set";
            }
        }
        if (ConcurrentUploads < 0)
        {
            yield return $"{Section}:ConcurrentUploads must be ≥ 0";
        }
    }

    public IEnumerable<(string Name, RateClass Class)> Classes() =>
    [
        (nameof(ManifestReads), ManifestReads), (nameof(BlobReads), BlobReads), (nameof(Listings), Listings),
        (nameof(Writes), Writes), (nameof(Tokens), Tokens), (nameof(FailedLogins), FailedLogins),
    ];
}

/// <summary>A token bucket: <see cref="Burst"/> requests at once, refilled at <see cref="PerSecond"/>.</summary>
public sealed class RateClass
{
    public double PerSecond { get; set; }

    public int Burst { get; set; }

    public bool Limited => PerSecond > 0;
}
