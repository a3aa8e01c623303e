using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Distribution;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Auth;

/// <summary>
/// Guards <c>/v2/</c>. Mode None lets everyone in (and the host logs once that the registry is open). Mode Basic
/// needs a user of the htpasswd file; otherwise 401 <c>UNAUTHORIZED</c> with <c>WWW-Authenticate: Basic realm=…</c>
/// and <c>Docker-Distribution-API-Version</c>, also on <c>GET /v2/</c>, as clients expect (distribution-spec,
/// Distribution's auth docs). The authenticated user is kept in <c>HttpContext.User</c>' name for logs.
/// </summary>
public sealed class RegistryAuthFilter(IOptions<AuthOptions> options, ILogger<RegistryAuthFilter> logger) : IEndpointFilter
{
    private readonly AuthOptions _options = options.Value;
    private readonly HtpasswdFile? _users = options.Value.IsBasic ? new HtpasswdFile(options.Value.Htpasswd!) : null;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        if (_users is null)
        {
            return await next(invocation);
        }
        var context = invocation.HttpContext;
        if (TryBasic(context.Request.Headers.Authorization.ToString(), out var user, out var password) && _users.Verify(user, password))
        {
            context.User = new System.Security.Claims.ClaimsPrincipal(
                new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, user)], "Basic"));
            return await next(invocation);
        }
        if (user.Length > 0)
        {
            logger.LogWarning("failed login for {User} from {Address}", user, context.Connection.RemoteIpAddress);
        }
        context.Response.Headers[DistributionApi.ApiVersionHeader] = "registry/2.0";
        context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{_options.Realm}\"";
        await OciError.WriteAsync(context, ErrorCode.Unauthorized, "authentication required");
        return null;
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
