using System.Text.Json;
using Microsoft.AspNetCore.Http;
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
        var manifest = await repository.ResolveManifest(reference);
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
                ? await DefaultPlatformAsync(repository, manifest, context.RequestAborted)
                : null;
            if (child is null || !accept.Contains(child.MediaType))
            {
                await OciError.WriteAsync(context, ErrorCode.ManifestUnknown, $"manifest {reference} is {manifest.MediaType}, which the request does not accept");
                return;
            }
            manifest = child;
        }
        await WriteBlobAsync(context, manifest.Digest, manifest.Size, manifest.MediaType, []);
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

    private async Task<ManifestRef?> DefaultPlatformAsync(IRepositoryGrain repository, ManifestRef index, CancellationToken ct)
    {
        await using var stream = await OpenBlobAsync(index.Digest, 0, index.Size, [], ct);
        if (stream is null)
        {
            return null;
        }
        using var doc = await JsonDocument.ParseAsync(stream, cancellationToken: ct);
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
                return await repository.ResolveManifest(d);
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
