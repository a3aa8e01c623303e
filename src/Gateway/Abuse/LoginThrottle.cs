using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Wharf.Gateway.Abuse;

/// <summary>
/// Failed-login throttling (<see cref="RateLimitOptions.FailedLogins"/>) where a password is checked: Basic
/// credentials on <c>/v2/</c> and on the admin API, and <c>/auth/token</c>. Refused credentials count against the
/// user name at the client address and against the address; once either bucket is empty, further attempts answer 429 with
/// <c>Retry-After</c> without the password being checked (no bcrypt work for a guesser, no oracle for the password).
/// </summary>
public static class LoginThrottle
{
    /// <summary>Whether a password for <paramref name="user"/> may be checked now; else the seconds to wait (and a Retry-After header set).</summary>
    public static bool MayTry(HttpContext context, string user)
    {
        if (context.RequestServices.GetService<RateLimits>() is not { } limits
            || limits.MayTryLogin(limits.ClientAddress(context), user, out var wait))
        {
            return true;
        }
        context.Response.Headers.RetryAfter = ((long)Math.Max(1, Math.Ceiling(wait.TotalSeconds))).ToString(CultureInfo.InvariantCulture);
        context.RequestServices.GetService<Observability.WharfMetrics>()?.RateLimited.Add(1, new KeyValuePair<string, object?>("class", "FailedLogins"));
        return false;
    }

    /// <summary>Counts a refused password for <paramref name="user"/> from the request's client address.</summary>
    public static void Failed(HttpContext context, string user)
    {
        if (context.RequestServices.GetService<RateLimits>() is { } limits)
        {
            limits.LoginFailed(limits.ClientAddress(context), user);
        }
    }
}
