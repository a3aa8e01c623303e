using Wharf.Gateway.Distribution;

namespace Wharf.Gateway.Auth;

public enum AccessKind
{
    /// <summary><c>GET /v2/</c> and unknown endpoints: any valid identity.</summary>
    AnyIdentity,

    /// <summary><c>_catalog</c>: the <c>registry:catalog:*</c> scope; the answer is filtered by pull.</summary>
    Catalog,

    /// <summary>An action on one repository.</summary>
    Repository,
}

/// <summary>
/// What a <c>/v2/</c> request needs, per route and method, as Distribution's handlers ask it
/// (registry/handlers/app.go, appendAccessRecords): GET/HEAD pull, POST/PATCH/PUT push, DELETE delete. The
/// challenge asks for <c>pull,push</c> on a push route, as Distribution does, since every client pushing also reads.
/// </summary>
public readonly record struct RouteAccess(AccessKind Kind, string Repository = "", string Action = "", string ChallengeActions = "")
{
    public static RouteAccess For(Route route, string method)
    {
        if (route.Kind is RouteKind.Base or RouteKind.Unknown)
        {
            return new RouteAccess(AccessKind.AnyIdentity);
        }
        if (route.Kind is RouteKind.Catalog)
        {
            return new RouteAccess(AccessKind.Catalog);
        }
        return method switch
        {
            "GET" or "HEAD" when route.Kind is RouteKind.Upload => Push(route.Name),
            "GET" or "HEAD" => new RouteAccess(AccessKind.Repository, route.Name, AccessPolicy.Pull, AccessPolicy.Pull),
            "DELETE" when route.Kind is RouteKind.Upload => Push(route.Name),
            "DELETE" => new RouteAccess(AccessKind.Repository, route.Name, AccessPolicy.Delete, AccessPolicy.Delete),
            _ => Push(route.Name),
        };
    }

    public string Scope => Kind switch
    {
        AccessKind.Catalog => "registry:catalog:*",
        AccessKind.Repository => $"repository:{Repository}:{ChallengeActions}",
        _ => "",
    };

    private static RouteAccess Push(string name) => new(AccessKind.Repository, name, AccessPolicy.Push, "pull,push");
}
