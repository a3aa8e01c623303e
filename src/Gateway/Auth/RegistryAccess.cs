using Microsoft.AspNetCore.Http;

namespace Wharf.Gateway.Auth;

/// <summary>
/// Who is calling and what they may do, attached to the request by <see cref="RegistryAuthFilter"/>. Handlers ask
/// it where one request touches a second repository (a mount's <c>from</c>) or lists many (<c>_catalog</c>).
/// With auth mode None there is none, and everything is allowed.
/// </summary>
public sealed class RegistryAccess(string? subject, AccessPolicy policy, IReadOnlyList<AccessScope>? tokenAccess)
{
    /// <summary>The user name; null for anonymous.</summary>
    public string? Subject { get; } = subject;

    /// <summary>Whether the request may do <paramref name="action"/> on <paramref name="repository"/>: the token's
    /// grants in Token mode (what was asked and allowed when it was issued), the policies in Basic mode.</summary>
    public bool Allows(string repository, string action)
    {
        if (tokenAccess is null)
        {
            return policy.Allows(Subject, repository, action);
        }
        foreach (var a in tokenAccess)
        {
            if (a.Type == AccessScope.Repository && a.Name == repository && (a.Actions.Contains(action) || a.Actions.Contains("*")))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Whether a listing may show this repository: the subject may pull it under the policies.</summary>
    public bool MayList(string repository) => policy.Allows(Subject, repository, AccessPolicy.Pull);

    public static RegistryAccess? Of(HttpContext context) => context.Features.Get<RegistryAccess>();
}
