using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Bytes;
using Wharf.Gateway.Caching;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Distribution;

/// <summary>
/// The OCI Distribution API v1.1 under <c>/v2/</c>. One partial file per spec resource (Blobs, Uploads, Manifests,
/// Tags, Catalog, Referrers); this file dispatches. Metadata goes through grains, bytes through the byte service.
/// </summary>
public sealed partial class DistributionApi(
    IGrainFactory grains, IByteRouter router, ReplicaWriter writer, ReplicaReader reader, ManifestCache cache, BlobCache blobs, Auth.AuthServices auth, ILogger<DistributionApi> logger)
{
    public const string ApiVersionHeader = "Docker-Distribution-API-Version";
    public const string DigestHeader = "Docker-Content-Digest";
    private const int DefaultPageSize = 1000;
    private const int MaxPageSize = 10000;

    public async Task HandleAsync(HttpContext context, string path)
    {
        context.Response.Headers[ApiVersionHeader] = "registry/2.0";
        // The auth filter parsed it already when auth is on.
        var route = context.Features.Get<Route>() ?? Route.Parse(path);
        Observability.RequestObservation.Describe(context, route);
        var method = context.Request.Method;
        try
        {
            if (route.Kind is not (RouteKind.Base or RouteKind.Catalog or RouteKind.Unknown) && !Names.IsValidName(route.Name))
            {
                await OciError.WriteAsync(context, ErrorCode.NameInvalid, $"invalid repository name '{route.Name}'");
                return;
            }
            var handler = (route.Kind, method) switch
            {
                (RouteKind.Base, "GET" or "HEAD") => BaseAsync(context),
                (RouteKind.Catalog, "GET") => CatalogAsync(context),
                (RouteKind.Tags, "GET") => TagsAsync(context, route.Name),
                (RouteKind.Manifest, "GET" or "HEAD") => GetManifestAsync(context, route.Name, route.Argument),
                (RouteKind.Manifest, "PUT") => PutManifestAsync(context, route.Name, route.Argument),
                (RouteKind.Manifest, "DELETE") => DeleteManifestAsync(context, route.Name, route.Argument),
                (RouteKind.Blob, "GET" or "HEAD") => GetBlobAsync(context, route.Name, route.Argument),
                (RouteKind.Blob, "DELETE") => DeleteBlobAsync(context, route.Name, route.Argument),
                (RouteKind.Blob, "POST") when route.Argument == "uploads" => StartUploadAsync(context, route.Name),
                (RouteKind.UploadStart, "POST") => StartUploadAsync(context, route.Name),
                (RouteKind.Upload, "GET") => UploadStatusAsync(context, route.Name, route.Argument),
                (RouteKind.Upload, "PATCH") => PatchUploadAsync(context, route.Name, route.Argument),
                (RouteKind.Upload, "PUT") => PutUploadAsync(context, route.Name, route.Argument),
                (RouteKind.Upload, "DELETE") => CancelUploadAsync(context, route.Name, route.Argument),
                (RouteKind.Referrers, "GET") => ReferrersAsync(context, route.Name, route.Argument),
                (RouteKind.Unknown, _) => OciError.WriteAsync(context, ErrorCode.Unsupported, $"no such endpoint: {method} /v2/{path}", StatusCodes.Status404NotFound),
                _ => OciError.WriteAsync(context, ErrorCode.Unsupported, $"{method} is not supported on this endpoint"),
            };
            await handler;
        }
        catch (RegistryException e)
        {
            await OciError.WriteAsync(context, e.Code, e.Detail);
        }
        catch (BadHttpRequestException e)
        {
            await OciError.WriteAsync(context, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? ErrorCode.SizeInvalid : ErrorCode.BlobUploadInvalid, e.Message, e.StatusCode);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client hung up: nothing to answer, and nothing unacknowledged was recorded.
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (Exception e) when (IsUnavailable(e))
        {
            // The node that owns this data is down or unreachable (DESIGN principle 4): 503 with Retry-After,
            // never a 500 or a hang.
            logger.LogWarning("{Method} /v2/{Path}: owner unavailable: {Message}", method, path, e.Message);
            await OciError.WriteAsync(context, ErrorCode.Unavailable, "the storage node that owns this data is unavailable; retry shortly");
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Method} /v2/{Path} failed", method, path);
            await OciError.WriteAsync(context, ErrorCode.Unknown, "internal error");
        }
    }

    private static bool IsUnavailable(Exception e) => e switch
    {
        SiloUnavailableException or OrleansMessageRejectionException or Orleans.Runtime.Messaging.ConnectionFailedException or TimeoutException => true,
        Contracts.Grains.LogUnavailableException or Contracts.Grains.GrainMovedException => true,
        Grpc.Core.RpcException rpc => rpc.StatusCode is Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded,
        IOException { InnerException: RegistryException r } => r.Code == ErrorCode.Unavailable,
        _ => e.InnerException is not null && IsUnavailable(e.InnerException),
    };

    private static Task BaseAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = 2;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : context.Response.WriteAsync("{}");
    }

    private IRepositoryGrain Repository(string name) => grains.GetGrain<IRepositoryGrain>(name);

    private static Digest ParseDigest(string text, ErrorCode? code = null)
    {
        if (!Digest.TryParse(text, out var digest))
        {
            throw new RegistryException(code ?? ErrorCode.DigestInvalid, $"invalid digest '{text}'");
        }
        return digest.Value;
    }

    /// <summary>Parses <c>n</c> and <c>last</c> for the paged listings (spec.md "Listing Tags").</summary>
    private static (int Limit, string? Last) Paging(HttpContext context)
    {
        var q = context.Request.Query;
        var limit = DefaultPageSize;
        if (q.TryGetValue("n", out var nText))
        {
            if (!int.TryParse(nText.ToString(), out limit) || limit < 0)
            {
                throw new RegistryException(ErrorCode.PaginationInvalid, $"invalid n '{nText}'");
            }
            limit = Math.Min(limit, MaxPageSize);
        }
        var last = q.TryGetValue("last", out var l) && l.ToString().Length > 0 ? l.ToString() : null;
        return (limit, last);
    }

    private static void AllowUnboundedBody(HttpContext context)
    {
        // Layers can be many GiB: upload routes stream without Kestrel's 30 MB default (FACTS).
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f)
        {
            f.MaxRequestBodySize = null;
        }
    }
}
