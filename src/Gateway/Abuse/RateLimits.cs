using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Wharf.Gateway.Auth;
using Wharf.Gateway.Distribution;

namespace Wharf.Gateway.Abuse;

/// <summary>The classes of request that <see cref="RateLimitOptions"/> limits separately.</summary>
public enum RequestClass
{
    ManifestReads,
    BlobReads,
    Listings,
    Writes,
    Tokens,
}

/// <summary>
/// The token buckets of <see cref="RateLimitOptions"/>, one per caller and class, and the concurrent-upload cap.
/// Buckets live in System.Threading.RateLimiting's partitioned limiters, which drop a caller's bucket once it has
/// been idle and full for a while, so a scan from many addresses does not grow memory without bound.
/// </summary>
public sealed class RateLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string>?[] _classes;
    private readonly PartitionedRateLimiter<string>? _failedLogins;
    private readonly PartitionedRateLimiter<string>? _failedAddresses;
    private readonly PartitionedRateLimiter<string>? _uploads;
    private readonly TrustedProxyList _proxies;

    public RateLimits(RateLimitOptions options, TrustedProxyList proxies)
    {
        Options = options;
        _proxies = proxies;
        _classes =
        [
            Bucket(options.ManifestReads), Bucket(options.BlobReads), Bucket(options.Listings),
            Bucket(options.Writes), Bucket(options.Tokens),
        ];
        _failedLogins = Bucket(options.FailedLogins);
        _failedAddresses = options.FailedLogins.Limited
            ? Bucket(new RateClass { PerSecond = options.FailedLogins.PerSecond * 10, Burst = options.FailedLogins.Burst * 10 })
            : null;
        if (options.ConcurrentUploads > 0)
        {
            _uploads = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key,
                _ => new ConcurrencyLimiterOptions { PermitLimit = options.ConcurrentUploads, QueueLimit = 0 }));
        }
    }

    public RateLimitOptions Options { get; }

    /// <summary>Whether any limit applies to <c>/v2/</c> requests (none by default: the filter then does nothing).</summary>
    public bool LimitsRequests => _classes.Take((int)RequestClass.Tokens).Any(c => c is not null) || _uploads is not null;

    /// <summary>Takes one request of <paramref name="kind"/> from the caller's bucket; false with the time until
    /// the next one is allowed when it is empty.</summary>
    public bool TryTake(RequestClass kind, string caller, out TimeSpan retryAfter) => Take(_classes[(int)kind], caller, 1, out retryAfter);

    /// <summary>Holds one of the caller's concurrent-upload permits until disposed; null when the caller is at its cap.</summary>
    public IDisposable? TryStartUpload(string caller)
    {
        if (_uploads is null)
        {
            return Nothing.Instance;
        }
        var lease = _uploads.AttemptAcquire(caller);
        if (lease.IsAcquired)
        {
            return lease;
        }
        lease.Dispose();
        return null;
    }

    /// <summary>
    /// Whether a password for <paramref name="user"/> from <paramref name="address"/> may still be checked: false
    /// once that user at that address, or that address for all users together (10 times the bucket), was refused
    /// too often lately. Keyed by the pair, not the user alone, so a guesser elsewhere cannot lock a user out, and a
    /// misconfigured client behind a shared NAT address locks out only its own user name.
    /// </summary>
    public bool MayTryLogin(string address, string? user, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (_failedLogins is null)
        {
            return true;
        }
        // A bucket refills continuously: it may hold a fraction of a token, which a 0-permit peek would take for one.
        // A login may be tried while a whole attempt is left in both buckets.
        if (_failedLogins.GetStatistics(PairKey(address, user)) is { CurrentAvailablePermits: < 1 }
            || _failedAddresses!.GetStatistics("addr:" + address) is { CurrentAvailablePermits: < 1 })
        {
            retryAfter = TimeSpan.FromSeconds(Math.Ceiling(1 / Options.FailedLogins.PerSecond));
            return false;
        }
        return true;
    }

    /// <summary>Counts a refused password against the user at this address and against the address.</summary>
    public void LoginFailed(string address, string? user)
    {
        Take(_failedLogins, PairKey(address, user), 1, out _);
        Take(_failedAddresses, "addr:" + address, 1, out _);
    }

    private static string PairKey(string address, string? user) => $"pair:{user}\n{address}";

    /// <summary>The request's client address: the connection's peer, or, when the peer is a trusted proxy, the
    /// nearest address in <c>X-Forwarded-For</c> that is not itself a trusted proxy.</summary>
    public string ClientAddress(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is not null && _proxies.IsTrusted(remote))
        {
            var forwarded = context.Request.Headers["X-Forwarded-For"].ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            for (var i = forwarded.Length - 1; i >= 0; i--)
            {
                if (!IPAddress.TryParse(forwarded[i], out var hop))
                {
                    break;
                }
                remote = hop;
                if (!_proxies.IsTrusted(hop))
                {
                    break;
                }
            }
        }
        if (remote is { IsIPv4MappedToIPv6: true })
        {
            remote = remote.MapToIPv4();
        }
        return remote?.ToString() ?? "unknown";
    }

    /// <summary>The class of a <c>/v2/</c> request.</summary>
    public static RequestClass Classify(Route route, string method)
    {
        if (!HttpMethods.IsGet(method) && !HttpMethods.IsHead(method))
        {
            return RequestClass.Writes;
        }
        return route.Kind switch
        {
            RouteKind.Manifest => RequestClass.ManifestReads,
            RouteKind.Blob => RequestClass.BlobReads,
            _ => RequestClass.Listings,
        };
    }

    public void Dispose()
    {
        foreach (var c in _classes)
        {
            c?.Dispose();
        }
        _failedLogins?.Dispose();
        _failedAddresses?.Dispose();
        _uploads?.Dispose();
    }

    private static bool Take(PartitionedRateLimiter<string>? limiter, string key, int permits, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (limiter is null)
        {
            return true;
        }
        using var lease = limiter.AttemptAcquire(key, permits);
        if (lease.IsAcquired)
        {
            return true;
        }
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        return false;
    }

    private static PartitionedRateLimiter<string>? Bucket(RateClass c)
    {
        if (!c.Limited)
        {
            return null;
        }
        // Whole tokens per period: ten refills a second above 10/s, else one token every 1/PerSecond seconds.
        var (tokens, period) = c.PerSecond >= 10
            ? ((int)Math.Max(1, Math.Round(c.PerSecond / 10)), TimeSpan.FromMilliseconds(100))
            : (1, TimeSpan.FromSeconds(1 / c.PerSecond));
        return PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = c.Burst,
            TokensPerPeriod = tokens,
            ReplenishmentPeriod = period,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    private sealed class Nothing : IDisposable
    {
        public static readonly Nothing Instance = new();

        public void Dispose()
        {
        }
    }
}
