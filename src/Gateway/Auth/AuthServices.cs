using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Auth;

/// <summary>The parts of the configured auth mode, shared by the <c>/v2/</c> filter and the token endpoint.</summary>
public sealed class AuthServices
{
    private static readonly TimeSpan FirstLoadWait = TimeSpan.FromSeconds(10);

    private readonly AccessPolicy _configured;

    public AuthServices(AuthOptions options, string? dataPath, ILogger logger, StoredAccess? stored = null)
    {
        Options = options;
        Stored = stored;
        _configured = new AccessPolicy(options.Policies);
        Proxies = new TrustedProxyList(options.TrustedProxies);
        if (!string.IsNullOrWhiteSpace(options.Htpasswd) && (options.IsBasic || (options.IsToken && !options.Token.IsExternal)))
        {
            Users = new HtpasswdFile(options.Htpasswd);
        }
        if (options.IsToken)
        {
            Tokens = TokenService.Load(options.Token, dataPath, logger);
        }
    }

    public AuthOptions Options { get; }

    /// <summary>The policies in force now: configured and stored (with the stored teams).</summary>
    public AccessPolicy Policy => Stored?.Current.Policy ?? _configured;

    /// <summary>Users from the htpasswd file, when one is configured.</summary>
    public HtpasswdFile? Users { get; }

    /// <summary>Users, robots, teams and policies stored in the cluster, as this gateway holds them.</summary>
    public StoredAccess? Stored { get; }

    /// <summary>Waits (once, at most a few seconds after start) until the stored state was read from the cluster.</summary>
    public Task ReadyAsync() => Stored?.ReadyAsync(FirstLoadWait) ?? Task.CompletedTask;

    /// <summary>
    /// Credentials of a stored user or robot, else of the htpasswd file. A name stored in the cluster is decided by
    /// the store alone (a disabled stored user is refused even if the file knows the name); robot names
    /// (<c>robot$…</c>) only by the store.
    /// </summary>
    public bool Verify(string user, string password)
    {
        if (Stored?.Verify(user, password) is { } stored)
        {
            return stored;
        }
        if (Users is not null && !user.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal))
        {
            return Users.Verify(user, password);
        }
        // Spend the time of a real check, so timing does not tell which users exist.
        BCrypt.Net.BCrypt.Verify(password, "$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG");
        return false;
    }

    /// <summary>Whether the identity may still get tokens (a refresh): stored and usable, or in the htpasswd file.</summary>
    public bool Exists(string subject)
    {
        var view = Stored?.Current;
        if (view is not null && view.Users.TryGetValue(subject, out var user))
        {
            return !user.Disabled;
        }
        if (subject.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal))
        {
            return view is not null && view.Robots.TryGetValue(subject, out var robot) && AccessView.IsValid(robot, DateTimeOffset.UtcNow);
        }
        return Users?.Contains(subject) == true;
    }

    /// <summary>
    /// Whether a valid token's subject was revoked since (pushed to every gateway, docs/security.md "Revocation"): a
    /// robot revoked, deleted or expired; a stored user disabled, or deleted after the token was issued. Dictionary
    /// lookups in the current view: no call leaves the gateway.
    /// </summary>
    public bool IsRevoked(TokenClaims claims)
    {
        // An external issuer's subjects are its own: the store neither issued nor can revoke them.
        if (Stored is null || claims.Subject.Length == 0 || Options.Token.IsExternal)
        {
            return false;
        }
        var view = Stored.Current;
        if (claims.Subject.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal))
        {
            return !(view.Robots.TryGetValue(claims.Subject, out var robot) && AccessView.IsValid(robot, DateTimeOffset.UtcNow));
        }
        if (view.Users.TryGetValue(claims.Subject, out var user))
        {
            return user.Disabled;
        }
        // iat has whole seconds: a token issued in the second of the deletion is refused too.
        return view.DeletedUsers.TryGetValue(claims.Subject, out var deleted) && claims.IssuedAt <= deleted;
    }

    public TokenService? Tokens { get; }

    public TrustedProxyList Proxies { get; }

    /// <summary>The token endpoint named in Bearer challenges.</summary>
    public string Realm(HttpContext context) => Options.Token.Realm ?? Proxies.PublicBase(context) + "/auth/token";

    /// <summary>
    /// What a token grants: for each scope asked, the intersection of its actions with what the policies allow
    /// (token.md: "the set of access granted may be a subset of what was requested"). Nothing allowed is no entry,
    /// not an error. <c>registry:catalog:*</c> goes to anyone who holds any grant; the listing is then filtered by pull.
    /// </summary>
    public IReadOnlyList<AccessScope> Grant(string? subject, IEnumerable<AccessScope> asked)
    {
        var granted = new Dictionary<(string, string), List<string>>();
        foreach (var scope in asked)
        {
            if (scope.Type == AccessScope.Repository && Names.IsValidName(scope.Name))
            {
                var allowed = Policy.Allowed(subject, scope.Name);
                var wanted = scope.Actions.Contains("*") ? AccessPolicy.AllActions : scope.Actions;
                foreach (var action in wanted.Where(allowed.Contains))
                {
                    var list = granted.TryGetValue((scope.Type, scope.Name), out var l) ? l : granted[(scope.Type, scope.Name)] = [];
                    if (!list.Contains(action))
                    {
                        list.Add(action);
                    }
                }
            }
            else if (scope.Type == AccessScope.Registry && scope.Name == AccessScope.Catalog && scope.Actions.Contains("*") && Policy.HasAnyGrant(subject))
            {
                granted[(AccessScope.Registry, AccessScope.Catalog)] = ["*"];
            }
        }
        return [.. granted.Select(g => new AccessScope(g.Key.Item1, g.Key.Item2, g.Value))];
    }
}
