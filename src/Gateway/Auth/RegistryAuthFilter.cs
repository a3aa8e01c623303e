using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wharf.Gateway.Distribution;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Auth;

/// <summary>
/// Guards <c>/v2/</c>: finds who calls (Basic credentials, a Bearer token, or nobody), what the route needs
/// (<see cref="RouteAccess"/>), and answers 401 with the spec's challenge or 403 <c>DENIED</c> when they differ.
/// Mode None lets everyone in. Every 401 carries <c>WWW-Authenticate</c> and <c>Docker-Distribution-API-Version</c>,
/// also on <c>GET /v2/</c>, which is where clients learn the realm, so <c>GET /v2/</c> challenges a caller who sent
/// no credentials even when anonymous holds grants (containers/image and docker only authenticate after a challenge
/// there). The caller's <see cref="RegistryAccess"/> is attached to the request for handlers.
/// </summary>
public sealed class RegistryAuthFilter(AuthServices auth, ILogger<RegistryAuthFilter> logger) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        if (auth.Options.IsNone)
        {
            return await next(invocation);
        }
        var context = invocation.HttpContext;
        // Parsed once per request (the audit filter outside this one usually has already).
        var route = Route.Of(context);
        var need = RouteAccess.For(route, context.Request.Method);
        await auth.ReadyAsync();
        var header = context.Request.Headers.Authorization.ToString();
        var access = auth.Options.IsToken ? await CheckTokenAsync(context, header, need) : await CheckBasicAsync(context, header, need);
        if (access is null)
        {
            // The refusal is written; an empty result keeps the endpoint from writing anything after it.
            return Results.Empty;
        }
        context.Features.Set(access);
        if (access.Subject is not null)
        {
            context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, access.Subject)], auth.Options.Mode));
        }
        return await next(invocation);
    }

    private async Task<RegistryAccess?> CheckBasicAsync(HttpContext context, string header, RouteAccess need)
    {
        string? subject = null;
        if (header.Length > 0)
        {
            var basic = TryBasic(header, out var user, out var password);
            if (basic && !Abuse.LoginThrottle.MayTry(context, user))
            {
                context.Response.Headers[DistributionApi.ApiVersionHeader] = "registry/2.0";
                await OciError.WriteAsync(context, ErrorCode.TooManyRequests, "too many failed logins; wait for Retry-After");
                return null;
            }
            if (!basic || !auth.Verify(user, password))
            {
                if (user.Length > 0)
                {
                    Abuse.LoginThrottle.Failed(context, user);
                    logger.LogWarning("failed login for {User} from {Address}", user, context.Connection.RemoteIpAddress);
                }
                await ChallengeAsync(context, need, null, "authentication required");
                return null;
            }
            subject = user;
        }
        var policy = auth.Policy;
        var allowed = need.Kind switch
        {
            AccessKind.AnyIdentity => subject is not null,
            AccessKind.Catalog => policy.HasAnyGrant(subject),
            _ => policy.Allows(subject, need.Repository, need.Action),
        };
        if (allowed)
        {
            return new RegistryAccess(subject, policy, null);
        }
        if (subject is null)
        {
            await ChallengeAsync(context, need, null, "authentication required");
        }
        else
        {
            context.Response.Headers[DistributionApi.ApiVersionHeader] = "registry/2.0";
            await OciError.WriteAsync(context, ErrorCode.Denied, $"{subject} may not {need.Action} {need.Repository}".TrimEnd());
        }
        return null;
    }

    private async Task<RegistryAccess?> CheckTokenAsync(HttpContext context, string header, RouteAccess need)
    {
        if (header.Length == 0)
        {
            await ChallengeAsync(context, need, null, "authentication required");
            return null;
        }
        if (!TryBearer(header, out var token) || !auth.Tokens!.TryValidate(token, out var claims, out var error) || auth.IsRevoked(claims))
        {
            await ChallengeAsync(context, need, "invalid_token", "invalid or expired token");
            return null;
        }
        var subject = claims.Subject.Length > 0 ? claims.Subject : null;
        var policy = auth.Policy;
        var access = new RegistryAccess(subject, policy, claims.Access);
        var allowed = need.Kind switch
        {
            // An anonymous token opens GET /v2/ only where anonymous may do something.
            AccessKind.AnyIdentity => subject is not null || policy.HasAnyGrant(null),
            AccessKind.Catalog => claims.Access.Any(a => a.Type == AccessScope.Registry && a.Name == AccessScope.Catalog && a.Actions.Contains("*")),
            _ => access.Allows(need.Repository, need.Action),
        };
        if (allowed)
        {
            return access;
        }
        await ChallengeAsync(context, need, "insufficient_scope", $"the token does not grant {need.Scope}");
        return null;
    }

    private Task ChallengeAsync(HttpContext context, RouteAccess need, string? error, string detail)
    {
        var headers = context.Response.Headers;
        headers[DistributionApi.ApiVersionHeader] = "registry/2.0";
        if (auth.Options.IsToken)
        {
            // token.md "How to authenticate": Bearer realm, service and the scope this request needs.
            var challenge = new StringBuilder($"Bearer realm=\"{auth.Realm(context)}\",service=\"{auth.Options.Token.Audience}\"");
            // A name that is not a valid repository name is not echoed into a header.
            if (need.Scope.Length > 0 && (need.Kind == AccessKind.Catalog || Wharf.Contracts.Oci.Names.IsValidName(need.Repository)))
            {
                challenge.Append($",scope=\"{need.Scope}\"");
            }
            if (error is not null)
            {
                challenge.Append($",error=\"{error}\"");
            }
            headers.WWWAuthenticate = challenge.ToString();
        }
        else
        {
            headers.WWWAuthenticate = $"Basic realm=\"{auth.Options.Realm}\"";
        }
        return OciError.WriteAsync(context, ErrorCode.Unauthorized, detail);
    }

    public static bool TryBearer(string header, out string token)
    {
        token = "";
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length > JsonWebToken.MaxLength + 7)
        {
            return false;
        }
        token = header[7..].Trim();
        return token.Length > 0;
    }

    public static bool TryBasic(string header, out string user, out string password)
    {
        user = password = "";
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) || header.Length > 4096)
        {
            return false;
        }
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = decoded.IndexOf(':');
            if (colon <= 0)
            {
                return false;
            }
            user = decoded[..colon];
            password = decoded[(colon + 1)..];
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
