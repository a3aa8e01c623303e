using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Deploy;

/// <summary>A real all-in-one on a free loopback port with its own data folder, and a small pushing client.</summary>
public sealed class Registry : IAsyncDisposable
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";

    private readonly WebApplication _app;
    private readonly string _data;

    private Registry(WebApplication app, string data, string url)
    {
        _app = app;
        _data = data;
        Url = url;
        Http = new HttpClient { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public string Url { get; }

    public HttpClient Http { get; }

    public static async Task<Registry> StartAsync()
    {
        var data = Path.Combine(Path.GetTempPath(), "wharf-deploy-" + Guid.NewGuid().ToString("N"));
        var app = AllInOne.Build(["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={data}"], b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await app.StartAsync();
        return new Registry(app, data, app.Urls.Single().TrimEnd('/'));
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public static string Sha256(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    public async Task<JsonObject> PushBlobAsync(string repo, byte[] content, string mediaType, CancellationToken ct)
    {
        var digest = Sha256(content);
        using var post = await Http.PostAsync($"v2/{repo}/blobs/uploads/?digest={digest}", new ByteArrayContent(content), ct);
        if (!post.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"push blob {repo}@{digest}: {(int)post.StatusCode} {await post.Content.ReadAsStringAsync(ct)}");
        }
        return new JsonObject { ["mediaType"] = mediaType, ["digest"] = digest, ["size"] = content.Length };
    }

    public async Task<(string Digest, byte[] Body)> PushManifestAsync(string repo, string reference, JsonObject manifest, string mediaType, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        using var put = await Http.PutAsync($"v2/{repo}/manifests/{reference}", content, ct);
        if (!put.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"push manifest {repo}:{reference}: {(int)put.StatusCode} {await put.Content.ReadAsStringAsync(ct)}");
        }
        return (Sha256(body), body);
    }

    /// <summary>An image: a config and <paramref name="layers"/> layers (given or random), tagged (or pushed by digest when tag is null).</summary>
    public async Task<(string Digest, byte[] Body)> PushImageAsync(string repo, string? tag, byte[][] layers, CancellationToken ct, string? subject = null, string? artifactType = null, string platform = "linux/amd64")
    {
        var config = Encoding.UTF8.GetBytes($$"""{"architecture":"{{platform.Split('/')[1]}}","os":"{{platform.Split('/')[0]}}","rootfs":{"type":"layers","diff_ids":[]},"created":"{{Guid.NewGuid()}}"}""");
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciManifest,
            ["config"] = await PushBlobAsync(repo, config, "application/vnd.oci.image.config.v1+json", ct),
            ["layers"] = new JsonArray((await Task.WhenAll(layers.Select(l => PushBlobAsync(repo, l, "application/vnd.oci.image.layer.v1.tar+gzip", ct)))).Select(n => (JsonNode)n).ToArray()),
        };
        if (artifactType is not null)
        {
            manifest["artifactType"] = artifactType;
        }
        if (subject is not null)
        {
            manifest["subject"] = JsonNode.Parse(subject);
        }
        var body = Encoding.UTF8.GetBytes(manifest.ToJsonString());
        return await PushManifestAsync(repo, tag ?? Sha256(body), manifest, OciManifest, ct);
    }

    public async Task<byte[]?> GetAsync(string path, CancellationToken ct, params string[] accept)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        foreach (var a in accept)
        {
            request.Headers.Accept.ParseAdd(a);
        }
        using var response = await Http.SendAsync(request, ct);
        return response.IsSuccessStatusCode ? await response.Content.ReadAsByteArrayAsync(ct) : null;
    }
}
