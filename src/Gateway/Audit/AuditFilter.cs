using Microsoft.AspNetCore.Http;
using Wharf.Gateway.Auth;
using Wharf.Gateway.Distribution;

namespace Wharf.Gateway.Audit;

/// <summary>
/// Turns requests into <see cref="AuditEvent"/>s once they are answered: pushes (manifest and blob), manifest pulls,
/// deletes, mounts, logins (the <c>GET /v2/</c> a client's login sends, and every refused credential), tokens issued
/// and refused, and any request refused for lack of a grant. It runs outside the auth filter, so it sees refusals;
/// it never records a password, token or query string.
/// </summary>
public sealed class AuditFilter(IServiceProvider services, Abuse.RateLimits limits, bool tokens, bool admin = false) : IEndpointFilter
{
    // Resolved at the first request: the log needs the metrics, which need the topology feed a gateway connects at start.
    private AuditLog? _log;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        if (!tokens && !admin)
        {
            // Parsed once here, before the auth filter and the API, which take it from the request's features.
            Route.Of(invocation.HttpContext);
        }
        var result = await next(invocation);
        var log = _log ??= (AuditLog)services.GetService(typeof(AuditLog))!;
        if (!log.Options.Enabled)
        {
            return result;
        }
        var context = invocation.HttpContext;
        try
        {
            var e = admin ? AdminEvent(context) : tokens ? TokenEvent(context) : RegistryEvent(context, log);
            if (e is not null)
            {
                log.Record(e);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or InvalidDataException or BadHttpRequestException or IOException)
        {
            // A request too malformed to describe is not worth failing its answer over.
        }
        return result;
    }

    private AuditEvent? RegistryEvent(HttpContext context, AuditLog log)
    {
        var request = context.Request;
        var status = context.Response.StatusCode;
        var route = Route.Of(context);
        var method = request.Method;
        var header = request.Headers.Authorization.ToString();
        var basicUser = RegistryAuthFilter.TryBasic(header, out var user, out _) ? user : null;
        var identity = Bounded(RegistryAccess.Of(context)?.Subject ?? basicUser ?? "anonymous");
        string? action = null;
        if (status == StatusCodes.Status401Unauthorized && header.Length > 0)
        {
            action = "login";
        }
        else if (route.Kind == RouteKind.Base && HttpMethods.IsGet(method) && header.Length > 0)
        {
            action = "login";
        }
        else if (route.Kind == RouteKind.Manifest)
        {
            action = method switch
            {
                _ when HttpMethods.IsGet(method) && (log.Options.ManifestReads || status >= 400) => "manifest.pull",
                _ when HttpMethods.IsPut(method) => "manifest.push",
                _ when HttpMethods.IsDelete(method) => route.Argument.Contains(':', StringComparison.Ordinal) ? "manifest.delete" : "tag.delete",
                _ => null,
            };
        }
        else if (route.Kind == RouteKind.Blob && HttpMethods.IsDelete(method))
        {
            action = "blob.delete";
        }
        else if (route.Kind == RouteKind.UploadStart && HttpMethods.IsPost(method) && request.Query.ContainsKey("mount"))
        {
            action = status == StatusCodes.Status201Created ? "blob.mount" : "blob.mount.fallback";
        }
        else if ((route.Kind == RouteKind.Upload && HttpMethods.IsPut(method)) || (route.Kind == RouteKind.UploadStart && HttpMethods.IsPost(method) && request.Query.ContainsKey("digest")))
        {
            action = "blob.push";
        }
        if (action is null && status == StatusCodes.Status403Forbidden)
        {
            action = method.ToLowerInvariant() + " " + route.Kind.ToString().ToLowerInvariant();
        }
        if (action is null || (status == StatusCodes.Status401Unauthorized && header.Length == 0))
        {
            return null;
        }
        var reference = route.Kind is RouteKind.Manifest or RouteKind.Blob ? route.Argument : null;
        var digest = context.Response.Headers["Docker-Content-Digest"].ToString() is { Length: > 0 } d ? d
            : request.Query["mount"].ToString() is { Length: > 0 } m ? m
            : request.Query["digest"].ToString() is { Length: > 0 } q ? q : null;
        return new AuditEvent(DateTimeOffset.UtcNow, action, identity, limits.ClientAddress(context), Outcome(status), status,
            route.Name.Length > 0 ? route.Name : null, reference, digest,
            action.StartsWith("blob.mount", StringComparison.Ordinal) ? "from " + Bounded(request.Query["from"].ToString()) : null);
    }

    /// <summary>The admin API: every change (users, robots, teams, policies), every audit read, every refusal.</summary>
    private AuditEvent? AdminEvent(HttpContext context)
    {
        var request = context.Request;
        var status = context.Response.StatusCode;
        var header = request.Headers.Authorization.ToString();
        var identity = context.Items[Auth.AdminApi.AdminSubjectKey] as string
            ?? (RegistryAuthFilter.TryBasic(header, out var user, out _) ? user : null) ?? "anonymous";
        var path = (request.RouteValues["path"] as string ?? "").Trim('/');
        string? action = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)
            ? (path.StartsWith("audit", StringComparison.Ordinal) ? "admin.audit.read" : status is 401 or 403 or 429 ? "admin.read" : null)
            : "admin.change";
        if (status == StatusCodes.Status401Unauthorized && header.Length > 0)
        {
            action = "login";
        }
        if (action is null)
        {
            return null;
        }
        return new AuditEvent(DateTimeOffset.UtcNow, action, Bounded(identity), limits.ClientAddress(context), Outcome(status), status,
            Detail: Bounded($"{request.Method} /admin/v1/{path}"));
    }

    private AuditEvent? TokenEvent(HttpContext context)
    {
        var request = context.Request;
        var status = context.Response.StatusCode;
        string? identity = RegistryAuthFilter.TryBasic(request.Headers.Authorization.ToString(), out var user, out _) ? user : null;
        string scope;
        if (HttpMethods.IsPost(request.Method) && request.HasFormContentType)
        {
            // The endpoint has read the form already; this reads it from the request's cache, not the wire.
            var form = request.Form;
            identity ??= form["username"].ToString() is { Length: > 0 } u ? u : form["grant_type"] == "refresh_token" ? "(refresh token)" : null;
            scope = form["scope"].ToString();
        }
        else
        {
            scope = string.Join(' ', request.Query["scope"].ToArray());
        }
        var action = status == StatusCodes.Status200OK ? "token.issued" : status == StatusCodes.Status401Unauthorized ? "login" : "token.refused";
        return new AuditEvent(DateTimeOffset.UtcNow, action, Bounded(identity ?? "anonymous"), limits.ClientAddress(context), Outcome(status), status,
            Detail: scope.Length > 0 ? "scope " + Bounded(scope) : null);
    }

    private static string Outcome(int status) => status switch
    {
        < 400 => "ok",
        401 or 403 => "denied",
        429 => "throttled",
        _ => "failed",
    };

    private static string Bounded(string text) => text.Length <= 512 ? text : text[..512] + "…";
}
