using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Wharf.Gateway.Distribution;

namespace Wharf.Gateway.Observability;

/// <summary>
/// What the dispatcher learned about a request (its route kind, repository and digest), carried as a request feature
/// from <see cref="DistributionApi"/> to the metrics, the access log and the HTTP server span.
/// </summary>
public sealed class RequestObservation
{
    public RouteKind Kind { get; private set; } = RouteKind.Unknown;

    /// <summary>The route label: a small fixed set (base, catalog, tags, manifest, blob, upload, referrers, other).</summary>
    public string RouteLabel => Label(Kind);

    /// <summary>The route template, as OpenTelemetry's <c>http.route</c> asks (low cardinality).</summary>
    public string RouteTemplate => Template(Kind);

    public string? Repository { get; private set; }

    /// <summary>Called by the dispatcher once it has parsed the path after <c>/v2/</c>.</summary>
    public static void Describe(HttpContext context, Route route)
    {
        var observation = context.Features.Get<RequestObservation>();
        if (observation is not null)
        {
            observation.Kind = route.Kind;
            observation.Repository = route.Name.Length > 0 ? route.Name : null;
        }
        // The span's name and http.route are set from Kind when the request ends (Telemetry), after the
        // instrumentation has named it after the endpoint's catch-all template.
        if (Activity.Current is { IsAllDataRequested: true } span)
        {
            if (route.Name.Length > 0)
            {
                span.SetTag("oci.repository", route.Name);
            }
            if (route.Argument.Contains(':', StringComparison.Ordinal))
            {
                span.SetTag("oci.digest", route.Argument);
            }
            else if (route.Kind == RouteKind.Manifest && route.Argument.Length > 0)
            {
                span.SetTag("oci.tag", route.Argument);
            }
        }
    }

    public static string Label(RouteKind kind) => kind switch
    {
        RouteKind.Base => "base",
        RouteKind.Catalog => "catalog",
        RouteKind.Tags => "tags",
        RouteKind.Manifest => "manifest",
        RouteKind.Blob => "blob",
        RouteKind.UploadStart or RouteKind.Upload => "upload",
        RouteKind.Referrers => "referrers",
        _ => "other",
    };

    public static string Template(RouteKind kind) => kind switch
    {
        RouteKind.Base => "/v2/",
        RouteKind.Catalog => "/v2/_catalog",
        RouteKind.Tags => "/v2/{name}/tags/list",
        RouteKind.Manifest => "/v2/{name}/manifests/{reference}",
        RouteKind.Blob => "/v2/{name}/blobs/{digest}",
        RouteKind.UploadStart => "/v2/{name}/blobs/uploads/",
        RouteKind.Upload => "/v2/{name}/blobs/uploads/{reference}",
        RouteKind.Referrers => "/v2/{name}/referrers/{digest}",
        _ => "/v2/{**path}",
    };
}
