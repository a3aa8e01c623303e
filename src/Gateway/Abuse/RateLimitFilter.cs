using System.Globalization;
using Microsoft.AspNetCore.Http;
using Wharf.Gateway.Auth;
using Wharf.Gateway.Distribution;
using Wharf.Gateway.Errors;
using Wharf.Gateway.Observability;

namespace Wharf.Gateway.Abuse;

/// <summary>
/// Applies <see cref="RateLimits"/> to a request: on <c>/v2/</c> after auth, so a caller is counted by identity when it
/// has one and by address when anonymous; on <c>/auth/token</c> by address. An empty bucket answers 429
/// <c>TOOMANYREQUESTS</c> with <c>Retry-After</c> (whole seconds), as do uploads past the caller's concurrent cap.
/// </summary>
public sealed class RateLimitFilter(RateLimits limits, IServiceProvider services, bool tokens) : IEndpointFilter
{
    // Resolved at the first refusal: the metrics need the topology feed, which a gateway connects at start, not at mapping.
    private WharfMetrics? _metrics;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        if (tokens)
        {
            if (!limits.TryTake(RequestClass.Tokens, limits.ClientAddress(context), out var wait))
            {
                return await RefuseAsync(context, RequestClass.Tokens, wait, "too many token requests");
            }
            return await next(invocation);
        }
        if (!limits.LimitsRequests)
        {
            return await next(invocation);
        }
        var route = Route.Of(context);
        var caller = RegistryAccess.Of(context)?.Subject is { } subject ? "id:" + subject : "addr:" + limits.ClientAddress(context);
        var kind = RateLimits.Classify(route, context.Request.Method);
        if (!limits.TryTake(kind, caller, out var retryAfter))
        {
            return await RefuseAsync(context, kind, retryAfter, "too many requests");
        }
        if (kind == RequestClass.Writes && route.Kind is RouteKind.Upload or RouteKind.UploadStart)
        {
            using var upload = limits.TryStartUpload(caller);
            if (upload is null)
            {
                return await RefuseAsync(context, kind, TimeSpan.FromSeconds(1),
                    $"at most {limits.Options.ConcurrentUploads} uploads at once per caller");
            }
            return await next(invocation);
        }
        return await next(invocation);
    }

    private async Task<object?> RefuseAsync(HttpContext context, RequestClass kind, TimeSpan retryAfter, string detail)
    {
        _metrics ??= (WharfMetrics)services.GetService(typeof(WharfMetrics))!;
        _metrics.RateLimited.Add(1, new KeyValuePair<string, object?>("class", kind.ToString()));
        var seconds = (long)Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        context.Response.Headers[DistributionApi.ApiVersionHeader] = "registry/2.0";
        await OciError.WriteAsync(context, ErrorCode.TooManyRequests, detail);
        // The answer is written; an empty result keeps the endpoint from writing after it.
        return Results.Empty;
    }
}
