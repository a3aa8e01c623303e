using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Wharf.Tests.Observability;

/// <summary>The few registry calls the tests drive: a one-layer image pushed the two usual ways.</summary>
public static class Push
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";

    public static string Sha256(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>POST ?digest= with the whole blob (monolithic).</summary>
    public static async Task MonolithicAsync(HttpClient http, string repo, byte[] blob, CancellationToken ct)
    {
        using var content = new ByteArrayContent(blob);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var r = await http.PostAsync($"v2/{repo}/blobs/uploads/?digest={Sha256(blob)}", content, ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }

    /// <summary>POST, one PATCH, PUT ?digest= (the usual push).</summary>
    public static async Task ChunkedAsync(HttpClient http, string repo, byte[] blob, CancellationToken ct)
    {
        using var start = await http.PostAsync($"v2/{repo}/blobs/uploads/", null, ct);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!.ToString();
        using var chunk = new ByteArrayContent(blob);
        chunk.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        chunk.Headers.TryAddWithoutValidation("Content-Range", $"0-{blob.Length - 1}");
        using var patch = await http.PatchAsync(location, chunk, ct);
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        var next = patch.Headers.Location!.ToString();
        using var put = await http.PutAsync(next + (next.Contains('?') ? "&" : "?") + "digest=" + Sha256(blob), null, ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
    }

    public static byte[] Manifest(byte[] config, byte[] layer) => Encoding.UTF8.GetBytes(
        $$"""{"schemaVersion":2,"mediaType":"{{OciManifest}}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{Sha256(config)}}","size":{{config.Length}}},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{{Sha256(layer)}}","size":{{layer.Length}}}]}""");

    public static async Task ManifestAsync(HttpClient http, string repo, string tag, byte[] manifest, CancellationToken ct)
    {
        using var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(OciManifest);
        using var r = await http.PutAsync($"v2/{repo}/manifests/{tag}", content, ct);
        Assert.Equal(HttpStatusCode.Created, r.StatusCode);
    }

    /// <summary>Pushes a config (chunked) and a layer (monolithic), then the manifest under <paramref name="tag"/>.</summary>
    public static async Task<(byte[] Config, byte[] Layer, byte[] Manifest)> ImageAsync(HttpClient http, string repo, string tag, int layerSize, CancellationToken ct)
    {
        var config = Encoding.UTF8.GetBytes($$"""{"architecture":"amd64","os":"linux","created":"{{Guid.NewGuid()}}"}""");
        var layer = RandomNumberGenerator.GetBytes(layerSize);
        await ChunkedAsync(http, repo, config, ct);
        await MonolithicAsync(http, repo, layer, ct);
        var manifest = Manifest(config, layer);
        await ManifestAsync(http, repo, tag, manifest, ct);
        return (config, layer, manifest);
    }
}
