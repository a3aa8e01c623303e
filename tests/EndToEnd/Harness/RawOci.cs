using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>An image pushed over raw HTTP: its manifest, config and layers, each with its exact bytes.</summary>
public sealed record RawImage(string Repository, string Tag, byte[] Manifest, string ManifestDigest, IReadOnlyList<(string Digest, byte[] Bytes)> Blobs);

/// <summary>
/// The OCI Distribution push and pull flows as raw HTTP requests, so a test chooses which gateway gets each request.
/// </summary>
public static class RawOci
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Random bytes: nothing compresses or deduplicates them, and each run pushes new content.</summary>
    public static byte[] RandomBytes(int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A config blob (valid JSON) made unique by a nonce.</summary>
    public static byte[] Config(string nonce) => Encoding.UTF8.GetBytes(new JsonObject
    {
        ["architecture"] = "amd64",
        ["os"] = "linux",
        ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() },
        ["config"] = new JsonObject { ["Labels"] = new JsonObject { ["nonce"] = nonce } },
    }.ToJsonString());

    /// <summary>An image manifest over a config and layers, made unique by an annotation.</summary>
    public static byte[] Manifest((string Digest, byte[] Bytes) config, IEnumerable<(string Digest, byte[] Bytes)> layers, string nonce) =>
        Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciLayout.ManifestType,
            ["config"] = new JsonObject { ["mediaType"] = OciLayout.ConfigType, ["digest"] = config.Digest, ["size"] = config.Bytes.Length },
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)new JsonObject { ["mediaType"] = OciLayout.LayerType, ["digest"] = l.Digest, ["size"] = l.Bytes.Length })]),
            ["annotations"] = new JsonObject { ["nonce"] = nonce },
        }.ToJsonString());

    /// <summary>POST <c>?digest=</c> with the bytes: one request, the digest known up front.</summary>
    public static async Task PushMonolithicAsync(HttpClient http, string repository, byte[] bytes)
    {
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.PostAsync($"v2/{repository}/blobs/uploads/?digest={OciLayout.Sha256(bytes)}", content, Ct);
        await ExpectAsync(response, HttpStatusCode.Created, $"monolithic push to {repository}");
    }

    /// <summary>
    /// POST, one PATCH per chunk, then PUT <c>?digest=</c>: request i goes to <c>gateways[i % n]</c>, each following the
    /// Location of the answer before it (which another gateway gave).
    /// </summary>
    public static async Task PushChunkedAsync(IReadOnlyList<HttpClient> gateways, string repository, byte[] bytes, int chunkSize)
    {
        var step = 0;
        HttpClient Next() => gateways[step++ % gateways.Count];

        using (var post = await Next().PostAsync($"v2/{repository}/blobs/uploads/", null, Ct))
        {
            await ExpectAsync(post, HttpStatusCode.Accepted, "POST");
            var location = Location(post);
            for (var offset = 0; offset < bytes.Length; offset += chunkSize)
            {
                var count = Math.Min(chunkSize, bytes.Length - offset);
                using var chunk = new ByteArrayContent(bytes, offset, count);
                chunk.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                chunk.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + count - 1}");
                using var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = chunk };
                using var patch = await Next().SendAsync(request, Ct);
                await ExpectAsync(patch, HttpStatusCode.Accepted, $"PATCH {offset}-{offset + count - 1}");
                Assert.Equal($"0-{offset + count - 1}", patch.Headers.GetValues("Range").Single());
                location = Location(patch);
            }
            var separator = location.Contains('?') ? '&' : '?';
            using var put = await Next().PutAsync($"{location}{separator}digest={OciLayout.Sha256(bytes)}", null, Ct);
            await ExpectAsync(put, HttpStatusCode.Created, "PUT");
            Assert.Equal(OciLayout.Sha256(bytes), put.Headers.GetValues("Docker-Content-Digest").Single());
        }
    }

    public static async Task PutManifestAsync(HttpClient http, string repository, string reference, byte[] manifest)
    {
        using var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(OciLayout.ManifestType);
        using var response = await http.PutAsync($"v2/{repository}/manifests/{reference}", content, Ct);
        await ExpectAsync(response, HttpStatusCode.Created, $"manifest PUT {repository}:{reference}");
    }

    /// <summary>GET of a manifest (<c>manifests/REF</c>) or blob (<c>blobs/DIGEST</c>), with its status and bytes.</summary>
    public static async Task<(HttpStatusCode Status, byte[] Body, HttpResponseMessage Response)> GetAsync(HttpClient http, string path, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(OciLayout.ManifestType));
        var response = await http.SendAsync(request, ct);
        var body = await response.Content.ReadAsByteArrayAsync(ct);
        return (response.StatusCode, body, response);
    }

    /// <summary>Pulls an image's manifest by tag and every blob, and checks each byte for byte.</summary>
    public static async Task AssertServedAsync(HttpClient http, RawImage image)
    {
        var (status, body, response) = await GetAsync(http, $"v2/{image.Repository}/manifests/{image.Tag}", Ct);
        using (response)
        {
            Assert.True(status == HttpStatusCode.OK, $"manifest {image.Repository}:{image.Tag} through {http.BaseAddress}: {(int)status} {Encoding.UTF8.GetString(body)}");
            Assert.Equal(image.Manifest, body);
            Assert.Equal(image.ManifestDigest, response.Headers.GetValues("Docker-Content-Digest").Single());
        }
        foreach (var (digest, bytes) in image.Blobs)
        {
            var (blobStatus, blob, blobResponse) = await GetAsync(http, $"v2/{image.Repository}/blobs/{digest}", Ct);
            blobResponse.Dispose();
            Assert.True(blobStatus == HttpStatusCode.OK, $"blob {digest} of {image.Repository} through {http.BaseAddress}: {(int)blobStatus} {Encoding.UTF8.GetString(blob)}");
            Assert.True(bytes.AsSpan().SequenceEqual(blob), $"blob {digest} of {image.Repository}: the bytes differ");
        }
    }

    private static string Location(HttpResponseMessage response)
    {
        var location = response.Headers.Location ?? throw new InvalidOperationException("no Location header");
        return location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;
    }

    private static async Task ExpectAsync(HttpResponseMessage response, HttpStatusCode expected, string what)
    {
        if (response.StatusCode != expected)
        {
            var body = await response.Content.ReadAsStringAsync(Ct);
            Assert.Fail($"{what} through {response.RequestMessage?.RequestUri}: expected {(int)expected}, got {(int)response.StatusCode} {body}");
        }
    }
}
