using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Auth;

/// <summary>The parts of the configured auth mode, shared by the <c>/v2/</c> filter and the token endpoint.</summary>
public sealed class AuthServices
{
    public AuthServices(AuthOptions options, string? dataPath, ILogger logger)
    {
        Options = options;
        Policy = new AccessPolicy(options.Policies);
        Proxies = new TrustedProxyList(options.TrustedProxies);
        if (options.IsBasic || (options.IsToken && !options.Token.IsExternal))
        {
            Users = new HtpasswdFile(options.Htpasswd!);
        }
        if (options.IsToken)
        {
            Tokens = TokenService.Load(options.Token, dataPath, logger);
        }
    }

    public AuthOptions Options { get; }

    public AccessPolicy Policy { get; }

    public HtpasswdFile? Users { get; }

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
