using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Wharf.Gateway.Auth;

/// <summary>
/// The gateway's token service, <c>/auth/token</c>: GET per Distribution's token.md (Basic credentials or
/// anonymous; <c>service</c>, repeated <c>scope</c>, <c>account</c>, <c>offline_token</c>, <c>client_id</c>) and POST
/// per oauth.md (<c>grant_type=password|refresh_token</c>, <c>access_type=offline</c>). Errors use the OAuth2 form
/// (RFC 6749 §5.2): <c>{"error","error_description"}</c>, 400 for a malformed request, 401 for bad credentials.
/// </summary>
public sealed class TokenEndpoint(AuthServices auth, ILogger<TokenEndpoint> logger)
{
    private const long MaxFormBytes = 64 * 1024;

    public async Task GetAsync(HttpContext context)
    {
        var q = context.Request.Query;
        await auth.ReadyAsync();
        string? subject = null;
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length > 0)
        {
            var basic = RegistryAuthFilter.TryBasic(header, out var user, out var password);
            if (basic && !Abuse.LoginThrottle.MayTry(context, user))
            {
                await ErrorAsync(context, StatusCodes.Status429TooManyRequests, "too_many_requests", "too many failed logins; wait for Retry-After");
                return;
            }
            if (!basic || !auth.Verify(user, password))
            {
                if (user.Length > 0)
                {
                    Abuse.LoginThrottle.Failed(context, user);
                    logger.LogWarning("failed login for {User} from {Address}", user, context.Connection.RemoteIpAddress);
                }
                context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{auth.Options.Realm}\"";
                await ErrorAsync(context, StatusCodes.Status401Unauthorized, "invalid_grant", "wrong user name or password");
                return;
            }
            subject = user;
        }
        if (q["account"].ToString() is { Length: > 0 } account && account != subject)
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", "account does not match the credentials");
            return;
        }
        var offline = string.Equals(q["offline_token"].ToString(), "true", StringComparison.OrdinalIgnoreCase);
        await IssueAsync(context, subject, q["service"].ToString(), q["scope"], offline && subject is not null);
    }

    public async Task PostAsync(HttpContext context)
    {
        if (!context.Request.HasFormContentType || context.Request.ContentLength is > MaxFormBytes)
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", "expected an application/x-www-form-urlencoded body");
            return;
        }
        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(new Microsoft.AspNetCore.Http.Features.FormOptions { ValueLengthLimit = 16 * 1024, KeyLengthLimit = 256, ValueCountLimit = 128 }, context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or BadHttpRequestException or IOException)
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", "malformed form body");
            return;
        }
        await auth.ReadyAsync();
        string subject;
        var offline = false;
        switch (form["grant_type"].ToString())
        {
            case "password":
                var user = form["username"].ToString();
                if (user.Length > 0 && !Abuse.LoginThrottle.MayTry(context, user))
                {
                    await ErrorAsync(context, StatusCodes.Status429TooManyRequests, "too_many_requests", "too many failed logins; wait for Retry-After");
                    return;
                }
                if (user.Length == 0 || !auth.Verify(user, form["password"].ToString()))
                {
                    if (user.Length > 0)
                    {
                        Abuse.LoginThrottle.Failed(context, user);
                    }
                    logger.LogWarning("failed login for {User} from {Address}", user, context.Connection.RemoteIpAddress);
                    await ErrorAsync(context, StatusCodes.Status401Unauthorized, "invalid_grant", "wrong user name or password");
                    return;
                }
                subject = user;
                offline = form["access_type"].ToString() == "offline";
                break;
            case "refresh_token":
                // A refresh token names only its subject; grants are decided now, so a changed policy applies at
                // once, and a user removed from the htpasswd file, disabled or deleted, or a revoked robot cannot refresh.
                if (!auth.Tokens!.TryValidateRefresh(form["refresh_token"].ToString(), out subject, out _) || !auth.Exists(subject))
                {
                    await ErrorAsync(context, StatusCodes.Status401Unauthorized, "invalid_grant", "invalid or expired refresh token");
                    return;
                }
                break;
            default:
                await ErrorAsync(context, StatusCodes.Status400BadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token");
                return;
        }
        await IssueAsync(context, subject, form["service"].ToString(), form["scope"], offline, oauth: true);
    }

    private async Task IssueAsync(HttpContext context, string? subject, string service, IEnumerable<string?> scopeValues, bool offline, bool oauth = false)
    {
        var tokens = auth.Tokens!;
        if (service.Length > 0 && service != tokens.Audience)
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", $"unknown service '{service}'");
            return;
        }
        if (!AccessScope.TryParseAll(scopeValues, out var asked))
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_scope", "a scope is malformed (resourcetype:resourcename:action[,action])");
            return;
        }
        var granted = auth.Grant(subject, asked);
        var token = tokens.IssueAccess(subject ?? "", granted, out var issuedAt);
        var body = new Dictionary<string, object>
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = (int)tokens.Lifetime.TotalSeconds,
            ["issued_at"] = issuedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (oauth)
        {
            body["scope"] = string.Join(' ', granted.Select(g => g.ToString()));
        }
        if (offline)
        {
            body["refresh_token"] = tokens.IssueRefresh(subject!);
        }
        context.Response.Headers.CacheControl = "no-store";
        await WriteJsonAsync(context, StatusCodes.Status200OK, body);
    }

    private static Task ErrorAsync(HttpContext context, int status, string error, string description) =>
        WriteJsonAsync(context, status, new Dictionary<string, object> { ["error"] = error, ["error_description"] = description });

    private static async Task WriteJsonAsync(HttpContext context, int status, Dictionary<string, object> body)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }
}
