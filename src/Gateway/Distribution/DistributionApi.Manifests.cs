using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Distribution;

// GET / HEAD / PUT / DELETE /v2/<name>/manifests/<reference> (spec.md "Pulling manifests", "Pushing manifests").
public sealed partial class DistributionApi
{
    /// <summary>The spec lets a registry refuse manifests over 4 MiB with 413.</summary>
    public const int MaxManifestSize = 4 * 1024 * 1024;

    private static bool IsDigestReference(string reference) => reference.Contains(':');

    private static void ValidateReference(string reference)
    {
        if (IsDigestReference(reference))
        {
            ParseDigest(reference);
        }
        else if (!Names.IsValidTag(reference))
        {
            throw new RegistryException(ErrorCode.TagInvalid, $"invalid tag '{reference}'");
        }
    }

    private async Task GetManifestAsync(HttpContext context, string name, string reference)
    {
        ValidateReference(reference);
        var repository = Repository(name);
        var manifest = await cache.ResolveAsync(repository, name, reference);
        if (manifest is null)
        {
            await OciError.WriteAsync(context, ErrorCode.ManifestUnknown, $"manifest {reference} is not in repository {name}");
            return;
        }
        var accept = AcceptedTypes(context);
        if (accept is not null && !accept.Contains(manifest.MediaType))
        {
            // A client that cannot read an index gets the linux/amd64 image of it, as Distribution does — only for a
            // tag: a request by digest must get exactly that digest, or the client's verification fails.
            var child = MediaTypes.IsIndex(manifest.MediaType) && !IsDigestReference(reference)
                ? await DefaultPlatformAsync(repository, name, manifest, context.RequestAborted)
                : null;
            if (child is null || !accept.Contains(child.MediaType))
            {
                await OciError.WriteAsync(context, ErrorCode.ManifestUnknown, $"manifest {reference} is {manifest.MediaType}, which the request does not accept");
                return;
            }
            manifest = child;
        }
        await WriteManifestAsync(context, manifest);
    }

    /// <summary>
    /// Answers a manifest's body: from the gateway's body cache (DESIGN principle 7), or — with the cache off, a
    /// Range asked for, or a body above the push limit — streamed from the byte service like a blob.
    /// </summary>
    private async Task WriteManifestAsync(HttpContext context, ManifestRef manifest)
    {
        if (!cache.Enabled || manifest.Size > MaxManifestSize || context.Request.Headers.Range.Count > 0)
        {
            await WriteBlobAsync(context, manifest.Digest, manifest.Size, manifest.MediaType, []);
            return;
        }
        byte[]? body = null;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            body = await ManifestBodyAsync(manifest, context.RequestAborted);
            if (body is null)
            {
                await OciError.WriteAsync(context, ErrorCode.BlobUnknown, $"bytes of {manifest.Digest} are not available");
                return;
            }
        }
        var response = context.Response;
        response.Headers[DigestHeader] = manifest.Digest.ToString();
        response.Headers.ETag = $"\"{manifest.Digest}\"";
        response.Headers.AcceptRanges = "bytes";
        response.ContentType = manifest.MediaType;
        response.ContentLength = manifest.Size;
        if (body is not null)
        {
            await response.Body.WriteAsync(body, context.RequestAborted);
        }
    }

    /// <summary>A manifest's whole body, verified against its digest; null when no node has it.</summary>
    private Task<byte[]?> ManifestBodyAsync(ManifestRef manifest, CancellationToken ct) =>
        cache.Enabled
            // Shared by concurrent misses, so not cancelled by one client hanging up; a manifest is at most 4 MiB.
            ? cache.BodyAsync(manifest.Digest, () => ReadManifestBodyAsync(manifest, CancellationToken.None), ct)
            : ReadManifestBodyAsync(manifest, ct);

    private async Task<byte[]?> ReadManifestBodyAsync(ManifestRef manifest, CancellationToken ct)
    {
        if (manifest.Size > MaxManifestSize)
        {
            return null;
        }
        await using var stream = await OpenBlobAsync(manifest.Digest, 0, manifest.Size, [], ct);
        if (stream is null)
        {
            return null;
        }
        var body = new byte[manifest.Size];
        await stream.ReadExactlyAsync(body, ct);
        // Verified whenever copied (DESIGN principle 2): a cached body is served many times.
        if (Digest.Compute(manifest.Digest.Algorithm, body) != manifest.Digest)
        {
            logger.LogError("stored bytes of manifest {Digest} do not match their digest", manifest.Digest);
            throw new RegistryException(ErrorCode.Unavailable, $"the stored bytes of {manifest.Digest} do not match their digest");
        }
        return body;
    }

    /// <summary>The media types listed in Accept, or null when any type is acceptable.</summary>
    private static HashSet<string>? AcceptedTypes(HttpContext context)
    {
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in context.Request.Headers.Accept)
        {
            foreach (var part in (value ?? "").Split(','))
            {
                var type = part.Split(';')[0].Trim();
                if (type is "*/*" or "application/*")
                {
                    return null;
                }
                if (type.Length > 0)
                {
                    set.Add(type);
                }
            }
        }
        return set.Count == 0 || !set.Any(MediaTypes.IsManifest) ? null : set;
    }

    private async Task<ManifestRef?> DefaultPlatformAsync(IRepositoryGrain repository, string name, ManifestRef index, CancellationToken ct)
    {
        var body = await ManifestBodyAsync(index, ct);
        if (body is null)
        {
            return null;
        }
        using var doc = JsonDocument.Parse(body);
        if (!doc.RootElement.TryGetProperty("manifests", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        foreach (var m in list.EnumerateArray())
        {
            // The index was stored as pushed: any of these may be of the wrong JSON kind, which is no match, not a 500.
            if (m.ValueKind == JsonValueKind.Object
                && m.TryGetProperty("platform", out var p) && p.ValueKind == JsonValueKind.Object
                && StringProperty(p, "os") == "linux"
                && StringProperty(p, "architecture") == "amd64"
                && StringProperty(m, "digest") is { } d)
            {
                return await cache.ResolveAsync(repository, name, d);
            }
        }
        return null;
    }

    private static string? StringProperty(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private async Task PutManifestAsync(HttpContext context, string name, string reference)
    {
        ValidateReference(reference);
        var request = context.Request;
        if (request.ContentLength > MaxManifestSize)
        {
            await OciError.WriteAsync(context, ErrorCode.ManifestTooLarge, $"manifests are limited to {MaxManifestSize} bytes");
            return;
        }
        var body = await ReadLimitedAsync(request.Body, MaxManifestSize, context.RequestAborted);
        if (body is null)
        {
            await OciError.WriteAsync(context, ErrorCode.ManifestTooLarge, $"manifests are limited to {MaxManifestSize} bytes");
            return;
        }
        Digest digest;
        var tags = new List<string>();
        if (IsDigestReference(reference))
        {
            var claimed = ParseDigest(reference);
            digest = Digest.Compute(claimed.Algorithm, body);
            if (digest != claimed)
            {
                await OciError.WriteAsync(context, ErrorCode.DigestInvalid, $"manifest digest is {digest}, not {claimed}");
                return;
            }
        }
        else
        {
            digest = Digest.Compute(Digest.Sha256, body);
            tags.Add(reference);
        }
        foreach (var tag in request.Query["tag"])
        {
            if (tag is null || !Names.IsValidTag(tag))
            {
                await OciError.WriteAsync(context, ErrorCode.TagInvalid, $"invalid tag '{tag}'");
                return;
            }
            tags.Add(tag);
        }
        var manifest = ManifestParser.Parse(body, request.ContentType, digest);
        if (tags.Count > 0 && auth.Policy.ImmutableRule(name) is { } rule)
        {
            manifest = manifest with { ImmutableRule = $"{rule.Name}, {rule.Pattern}" };
        }
        await WriteToOwnersAsync(digest, new MemoryStream(body, writable: false), body.Length, context.RequestAborted);
        var result = await Repository(name).PutManifest(manifest, [.. tags]);
        if (!result.Succeeded)
        {
            await OciError.WriteAsync(context, ErrorCode.Find(result.ErrorCode!), result.Detail);
            return;
        }
        var response = context.Response;
        response.StatusCode = StatusCodes.Status201Created;
        response.Headers.Location = $"/v2/{name}/manifests/{digest}";
        response.Headers[DigestHeader] = digest.ToString();
        if (manifest.Subject is { } subject)
        {
            response.Headers["OCI-Subject"] = subject.ToString();
        }
        if (request.Query.ContainsKey("tag"))
        {
            response.Headers["OCI-Tag"] = tags.Distinct().ToArray();
        }
        response.ContentLength = 0;
    }

    private async Task DeleteManifestAsync(HttpContext context, string name, string reference)
    {
        ValidateReference(reference);
        var result = await Repository(name).DeleteManifest(reference);
        if (!result.Succeeded)
        {
            await OciError.WriteAsync(context, ErrorCode.Find(result.ErrorCode!), result.Detail ?? $"manifest {reference} is not in repository {name}");
            return;
        }
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.ContentLength = 0;
    }

    /// <summary>Reads at most <paramref name="limit"/> bytes; null when the body is longer.</summary>
    private static async Task<byte[]?> ReadLimitedAsync(Stream body, int limit, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        int n;
        while ((n = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > limit)
            {
                return null;
            }
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
