using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Wharf.Cli;

/// <summary>The slice of the OCI Distribution API (<c>/v2/</c>) the CLI needs, against any gateway.</summary>
public sealed class RegistryApi(HttpClient http)
{
    public static readonly string[] ManifestMediaTypes =
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.artifact.manifest.v1+json",
    ];

    public Uri BaseAddress => http.BaseAddress!;

    public async Task<List<string>> CatalogAsync(CancellationToken ct) =>
        await PagesAsync("v2/_catalog?n=1000", "repositories", ct);

    public async Task<List<string>> TagsAsync(string repo, CancellationToken ct) =>
        await PagesAsync($"v2/{repo}/tags/list?n=1000", "tags", ct);

    /// <summary>The manifest's exact bytes, media type and digest (verified against the bytes); null when absent.</summary>
    public async Task<FetchedManifest?> GetManifestAsync(string repo, string reference, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/{reference}");
        foreach (var mt in ManifestMediaTypes)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mt));
        }
        using var response = await SendAsync(request, ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureSuccessAsync(response, $"GET manifest {repo}:{reference}", ct);
        var body = await response.Content.ReadAsByteArrayAsync(ct);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
        {
            throw new CliException($"manifest {repo}@{reference} came back with digest {digest}: refusing corrupt data");
        }
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var d) && d.First() != digest)
        {
            throw new CliException($"manifest {repo}:{reference}: the registry says {d.First()}, the bytes hash to {digest}");
        }
        var mediaType = response.Content.Headers.ContentType?.MediaType ?? MediaTypeOf(body);
        return new FetchedManifest(body, mediaType, digest);
    }

    /// <summary>The descriptors of the manifests whose subject is <paramref name="digest"/>.</summary>
    public async Task<List<JsonElement>> ReferrersAsync(string repo, string digest, CancellationToken ct)
    {
        var result = new List<JsonElement>();
        string? next = $"v2/{repo}/referrers/{digest}";
        while (next is not null)
        {
            using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, next), ct);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return result;
            }
            await EnsureSuccessAsync(response, $"GET referrers of {repo}@{digest}", ct);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
            if (doc.RootElement.TryGetProperty("manifests", out var manifests))
            {
                result.AddRange(manifests.EnumerateArray().Select(m => m.Clone()));
            }
            next = NextLink(response);
        }
        return result;
    }

    /// <summary>Streams a blob into <paramref name="destination"/>, hashing as it goes; throws unless digest and size match.</summary>
    public async Task<long> DownloadBlobAsync(string repo, string digest, long expectedSize, Stream destination, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/blobs/{digest}");
        using var response = await SendAsync(request, ct, HttpCompletionOption.ResponseHeadersRead);
        await EnsureSuccessAsync(response, $"GET blob {repo}@{digest}", ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, ct)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            await destination.WriteAsync(buffer.AsMemory(0, n), ct);
            total += n;
        }
        var actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        if (actual != digest || (expectedSize >= 0 && total != expectedSize))
        {
            throw new CliException($"blob {repo}@{digest}: received {total} bytes hashing to {actual} (expected {expectedSize} bytes): refusing corrupt data");
        }
        return total;
    }

    public async Task<bool> BlobExistsAsync(string repo, string digest, CancellationToken ct)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{digest}"), ct);
        return response.IsSuccessStatusCode;
    }

    /// <summary>The digest the reference resolves to, or null when it does not exist.</summary>
    public async Task<string?> ManifestDigestAsync(string repo, string reference, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/manifests/{reference}");
        foreach (var mt in ManifestMediaTypes)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mt));
        }
        using var response = await SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            return null;
        }
        return response.Headers.TryGetValues("Docker-Content-Digest", out var d) ? d.First() : reference;
    }

    /// <summary>POST then PUT <c>?digest=</c> with the whole body: the registry verifies the digest before it acknowledges.</summary>
    public async Task PushBlobAsync(string repo, string digest, Func<Stream> open, CancellationToken ct)
    {
        using var post = await SendAsync(new HttpRequestMessage(HttpMethod.Post, $"v2/{repo}/blobs/uploads/"), ct);
        await EnsureSuccessAsync(post, $"start upload of {repo}@{digest}", ct);
        var location = post.Headers.Location ?? throw new CliException($"start upload of {repo}@{digest}: no Location in the answer");
        var target = location.IsAbsoluteUri ? location : new Uri(http.BaseAddress!, location);
        var separator = target.Query.Length > 0 ? "&" : "?";
        await using var stream = open();
        using var put = new HttpRequestMessage(HttpMethod.Put, new Uri(target + separator + "digest=" + Uri.EscapeDataString(digest)))
        {
            Content = new StreamContent(stream, 1 << 20),
        };
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        put.Content.Headers.ContentLength = stream.Length;
        using var response = await SendAsync(put, ct);
        await EnsureSuccessAsync(response, $"upload of {repo}@{digest}", ct);
    }

    public async Task PushManifestAsync(string repo, string reference, string mediaType, byte[] body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"v2/{repo}/manifests/{reference}") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var response = await SendAsync(request, ct);
        await EnsureSuccessAsync(response, $"PUT manifest {repo}:{reference}", ct);
    }

    public async Task DeleteManifestAsync(string repo, string reference, CancellationToken ct)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"v2/{repo}/manifests/{reference}"), ct);
        await EnsureSuccessAsync(response, $"delete {repo}:{reference}", ct);
    }

    public static string MediaTypeOf(byte[] manifest)
    {
        using var doc = JsonDocument.Parse(manifest);
        if (doc.RootElement.TryGetProperty("mediaType", out var mt) && mt.ValueKind == JsonValueKind.String)
        {
            return mt.GetString()!;
        }
        return doc.RootElement.TryGetProperty("manifests", out _) ? ManifestMediaTypes[0] : ManifestMediaTypes[1];
    }

    private async Task<List<string>> PagesAsync(string first, string property, CancellationToken ct)
    {
        var result = new List<string>();
        string? next = first;
        while (next is not null)
        {
            using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, next), ct);
            await EnsureSuccessAsync(response, $"GET /{next}", ct);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
            if (doc.RootElement.TryGetProperty(property, out var items) && items.ValueKind == JsonValueKind.Array)
            {
                result.AddRange(items.EnumerateArray().Select(i => i.GetString()!));
            }
            next = NextLink(response);
        }
        return result;
    }

    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var links))
        {
            return null;
        }
        foreach (var link in links)
        {
            var start = link.IndexOf('<', StringComparison.Ordinal);
            var end = link.IndexOf('>', StringComparison.Ordinal);
            if (start >= 0 && end > start && link.Contains("rel=\"next\"", StringComparison.Ordinal))
            {
                return link[(start + 1)..end].TrimStart('/');
            }
        }
        return null;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct, HttpCompletionOption option = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await http.SendAsync(request, option, ct);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"cannot reach {http.BaseAddress}: {e.Message}");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CliException($"{request.Method} {request.RequestUri} timed out after {http.Timeout.TotalSeconds:0} s");
        }
    }

    /// <summary>Throws with the registry's own OCI error (code and message) as one line.</summary>
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var detail = "";
        try
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            using var doc = JsonDocument.Parse(text);
            var first = doc.RootElement.GetProperty("errors")[0];
            detail = $": {first.GetProperty("code").GetString()} {first.GetProperty("message").GetString()}";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException)
        {
        }
        throw new CliException($"{what} failed with {(int)response.StatusCode} {response.ReasonPhrase}{detail}");
    }
}

public sealed record FetchedManifest(byte[] Body, string MediaType, string Digest);
