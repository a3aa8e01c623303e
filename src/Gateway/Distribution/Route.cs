using System.Text.RegularExpressions;

namespace Wharf.Gateway.Distribution;

public enum RouteKind
{
    Base,
    Catalog,
    Tags,
    Manifest,
    Blob,
    UploadStart,
    Upload,
    Referrers,
    Unknown,
}

/// <summary>
/// The API's routes as data (spec.md "Endpoints"). A repository name may itself contain "blobs" or "manifests"
/// as components, so each pattern anchors at the end (<c>\z</c>: .NET's <c>$</c> also matches before a final newline)
/// and the name takes the longest prefix.
/// </summary>
public sealed partial record Route(RouteKind Kind, string Name = "", string Argument = "")
{
    [GeneratedRegex("^(?<name>.+)/tags/list\\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagsPattern();

    [GeneratedRegex("^(?<name>.+)/manifests/(?<arg>[^/]+)\\z", RegexOptions.CultureInvariant)]
    private static partial Regex ManifestPattern();

    [GeneratedRegex("^(?<name>.+)/blobs/uploads/?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex UploadStartPattern();

    [GeneratedRegex("^(?<name>.+)/blobs/uploads/(?<arg>[^/]+)\\z", RegexOptions.CultureInvariant)]
    private static partial Regex UploadPattern();

    [GeneratedRegex("^(?<name>.+)/blobs/(?<arg>[^/]+)\\z", RegexOptions.CultureInvariant)]
    private static partial Regex BlobPattern();

    [GeneratedRegex("^(?<name>.+)/referrers/(?<arg>[^/]+)\\z", RegexOptions.CultureInvariant)]
    private static partial Regex ReferrersPattern();

    /// <summary>The request's route, parsed once per request and kept in its features (filters and the API share it).</summary>
    public static Route Of(Microsoft.AspNetCore.Http.HttpContext context)
    {
        if (context.Features.Get<Route>() is { } known)
        {
            return known;
        }
        var raw = context.Request.Path.Value ?? "";
        var route = Parse(raw.Length > 4 ? raw[4..] : "");
        context.Features.Set(route);
        return route;
    }

    /// <summary>Parses the path after <c>/v2/</c>.</summary>
    public static Route Parse(string path)
    {
        if (path.Length == 0)
        {
            return new Route(RouteKind.Base);
        }
        if (path is "_catalog")
        {
            return new Route(RouteKind.Catalog);
        }
        if (Match(TagsPattern(), path, RouteKind.Tags) is { } tags)
        {
            return tags;
        }
        return Match(ManifestPattern(), path, RouteKind.Manifest)
            ?? Match(UploadStartPattern(), path, RouteKind.UploadStart)
            ?? Match(UploadPattern(), path, RouteKind.Upload)
            ?? Match(BlobPattern(), path, RouteKind.Blob)
            ?? Match(ReferrersPattern(), path, RouteKind.Referrers)
            ?? new Route(RouteKind.Unknown);
    }

    private static Route? Match(Regex pattern, string path, RouteKind kind)
    {
        var m = pattern.Match(path);
        return m.Success ? new Route(kind, m.Groups["name"].Value, m.Groups["arg"].Success ? m.Groups["arg"].Value : "") : null;
    }
}
