using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Distribution;

// GET /v2/<name>/tags/list, /v2/_catalog and /v2/<name>/referrers/<digest> (spec.md "Content discovery").
// Every page is read from sorted records after `last`: O(page), never a scan of everything.
public sealed partial class DistributionApi
{
    private async Task TagsAsync(HttpContext context, string name)
    {
        var (limit, last) = Paging(context);
        var page = await Repository(name).ListTags(last, limit);
        if (page is null)
        {
            await OciError.WriteAsync(context, ErrorCode.NameUnknown, $"repository {name} is not known");
            return;
        }
        if (page.HasMore && limit > 0)
        {
            NextLink(context, $"/v2/{name}/tags/list", limit, page.Items[^1]);
        }
        await WriteJsonAsync(context, new { name, tags = page.Items });
    }

    private async Task CatalogAsync(HttpContext context)
    {
        var (limit, last) = Paging(context);
        var catalog = grains.GetGrain<ICatalogGrain>(0);
        if (Auth.RegistryAccess.Of(context) is not { } access)
        {
            var page = await catalog.List(last, limit);
            if (page.HasMore && limit > 0)
            {
                NextLink(context, "/v2/_catalog", limit, page.Items[^1]);
            }
            await WriteJsonAsync(context, new { repositories = page.Items });
            return;
        }
        // Only what the caller may pull. Pages are read until `limit` visible names are found or a bounded number
        // of names was looked at; then the answer may hold fewer than n with a Link to go on (spec.md allows
        // fewer), so a caller who may see little never makes the gateway scan the whole catalog at once.
        var visible = new List<string>();
        var cursor = last;
        var more = limit > 0;
        for (var scanned = 0; more && visible.Count < limit && scanned < CatalogScanLimit;)
        {
            var page = await catalog.List(cursor, Math.Max(limit - visible.Count, 100));
            foreach (var repository in page.Items)
            {
                scanned++;
                cursor = repository;
                if (access.MayList(repository))
                {
                    visible.Add(repository);
                    if (visible.Count == limit)
                    {
                        break;
                    }
                }
            }
            more = page.HasMore || (page.Items.Length > 0 && cursor != page.Items[^1]);
        }
        if (more && cursor is not null)
        {
            NextLink(context, "/v2/_catalog", limit, cursor);
        }
        await WriteJsonAsync(context, new { repositories = visible });
    }

    private const int CatalogScanLimit = 10_000;

    private async Task ReferrersAsync(HttpContext context, string name, string digestText)
    {
        var subject = ParseDigest(digestText);
        var artifactType = context.Request.Query["artifactType"].ToString();
        var filter = artifactType.Length > 0 ? artifactType : null;
        var (limit, last) = Paging(context);
        if (limit == 0)
        {
            limit = DefaultPageSize;
        }
        var page = await Repository(name).ListReferrers(subject, filter, last, limit);
        if (filter is not null)
        {
            context.Response.Headers["OCI-Filters-Applied"] = "artifactType";
        }
        if (page.NextLast is { } next)
        {
            var query = $"/v2/{name}/referrers/{subject}?n={limit}&last={Uri.EscapeDataString(next)}";
            if (filter is not null)
            {
                query += "&artifactType=" + Uri.EscapeDataString(filter);
            }
            context.Response.Headers.Link = $"<{query}>; rel=\"next\"";
        }
        var index = new
        {
            schemaVersion = 2,
            mediaType = MediaTypes.OciIndex,
            manifests = page.Items.Select(r => new
            {
                mediaType = r.MediaType,
                digest = r.Digest.ToString(),
                size = r.Size,
                artifactType = r.ArtifactType,
                annotations = r.Annotations,
            }),
        };
        await WriteJsonAsync(context, index, MediaTypes.OciIndex);
    }

    private static void NextLink(HttpContext context, string path, int limit, string last) =>
        context.Response.Headers.Link = $"<{path}?n={limit}&last={Uri.EscapeDataString(last)}>; rel=\"next\"";

    private static readonly JsonSerializerOptions ListingJson = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private static async Task WriteJsonAsync<T>(HttpContext context, T value, string contentType = "application/json")
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(value, ListingJson);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }
}
