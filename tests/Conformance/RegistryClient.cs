using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wharf.Tests.Conformance;

/// <summary>
/// A thin HTTP client for the /v2/ API and the few steps every workflow repeats (push a blob, push an image).
/// Each step asserts only what it must for the next step to make sense; the tests assert the behaviour.
/// </summary>
public sealed class RegistryClient(HttpClient http)
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar+gzip";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A repository name no other test uses.</summary>
    public static string UniqueName(string prefix) => $"conformance/{prefix}-{Guid.NewGuid().ToString("N")[..10]}";

    public static byte[] RandomBytes(int length) => RandomNumberGenerator.GetBytes(length);

    public static string Sha256(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    public static string Sha512(byte[] content) => "sha512:" + Convert.ToHexStringLower(SHA512.HashData(content));

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        configure?.Invoke(request);
        return await http.SendAsync(request, Ct);
    }

    public Task<HttpResponseMessage> GetAsync(string path, params string[] accept) =>
        SendAsync(HttpMethod.Get, path, configure: r =>
        {
            foreach (var a in accept)
            {
                r.Headers.Accept.ParseAdd(a);
            }
        });

    public Task<HttpResponseMessage> HeadAsync(string path) => SendAsync(HttpMethod.Head, path);

    public Task<HttpResponseMessage> DeleteAsync(string path) => SendAsync(HttpMethod.Delete, path);

    public Task<HttpResponseMessage> GetRangeAsync(string path, string range) =>
        SendAsync(HttpMethod.Get, path, configure: r => r.Headers.TryAddWithoutValidation("Range", range));

    public static Task<byte[]> BodyAsync(HttpResponseMessage response) => response.Content.ReadAsByteArrayAsync(Ct);

    public static async Task<JsonNode> JsonAsync(HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct)) ?? throw new InvalidDataException("empty JSON body");

    public static ByteArrayContent Octets(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    /// <summary>POST to open an upload session; returns its location.</summary>
    public async Task<string> StartUploadAsync(string name, string query = "")
    {
        using var response = await SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/{query}");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return response.Headers.Location?.OriginalString ?? throw new InvalidDataException("POST answered without Location");
    }

    /// <summary>A chunk body with its Content-Range (spec.md "Pushing a blob in chunks": inclusive, no unit).</summary>
    public static ByteArrayContent Chunk(byte[] bytes, long start)
    {
        var content = Octets(bytes);
        content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + bytes.Length - 1}");
        return content;
    }

    /// <summary>Asserts that the repository serves exactly these bytes under this digest.</summary>
    public async Task AssertBlobAsync(string name, string digest, byte[] expected)
    {
        using var response = await GetAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, await BodyAsync(response));
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    public static string WithQuery(string location, string query) => location + (location.Contains('?') ? "&" : "?") + query;

    /// <summary>POST then PUT with the whole blob (spec.md "POST then PUT"); returns the digest.</summary>
    public async Task<string> PushBlobAsync(string name, byte[] content)
    {
        var digest = Sha256(content);
        var location = await StartUploadAsync(name);
        using var response = await SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest), Octets(content));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return digest;
    }

    public Task<HttpResponseMessage> PutManifestAsync(string name, string reference, byte[] body, string mediaType)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return SendAsync(HttpMethod.Put, $"/v2/{name}/manifests/{reference}", content);
    }

    /// <summary>Pushes a manifest and asserts 201; returns its digest.</summary>
    public async Task<string> PushManifestAsync(string name, string reference, byte[] body, string mediaType = OciManifest)
    {
        using var response = await PutManifestAsync(name, reference, body, mediaType);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"manifest PUT answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        return Sha256(body);
    }

    /// <summary>Pushes a config and one layer, then an image manifest tagged <paramref name="tag"/> (when not null).</summary>
    public async Task<TestImage> PushImageAsync(string name, string? tag, int layerSize = 1024, string mediaType = OciManifest, string? subject = null, string? artifactType = null)
    {
        var config = Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"nonce\":\"{Guid.NewGuid()}\"}}");
        var layer = RandomBytes(layerSize);
        await PushBlobAsync(name, config);
        await PushBlobAsync(name, layer);
        var manifest = ImageManifest(config, [layer], mediaType, subject, artifactType);
        var digest = Sha256(manifest);
        await PushManifestAsync(name, tag ?? digest, manifest, mediaType);
        return new TestImage(name, manifest, digest, config, layer);
    }

    public static byte[] ImageManifest(byte[] config, byte[][] layers, string mediaType = OciManifest, string? subject = null, string? artifactType = null, Dictionary<string, string>? annotations = null, string configMediaType = OciConfig)
    {
        var docker = mediaType == DockerManifest;
        var m = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = mediaType,
            ["config"] = Descriptor(docker ? "application/vnd.docker.container.image.v1+json" : configMediaType, config),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)Descriptor(docker ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : OciLayer, l))]),
        };
        if (artifactType is not null)
        {
            m["artifactType"] = artifactType;
        }
        if (subject is not null)
        {
            m["subject"] = new JsonObject { ["mediaType"] = OciManifest, ["digest"] = subject, ["size"] = 123 };
        }
        if (annotations is not null)
        {
            m["annotations"] = new JsonObject([.. annotations.Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value))]);
        }
        return Encoding.UTF8.GetBytes(m.ToJsonString());
    }

    public static byte[] Index(IEnumerable<(string Digest, long Size, string MediaType, string Os, string Architecture)> children, string mediaType = OciIndex)
    {
        var m = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = mediaType,
            ["manifests"] = new JsonArray([.. children.Select(c => (JsonNode)new JsonObject
            {
                ["mediaType"] = c.MediaType,
                ["digest"] = c.Digest,
                ["size"] = c.Size,
                ["platform"] = new JsonObject { ["os"] = c.Os, ["architecture"] = c.Architecture },
            })]),
        };
        return Encoding.UTF8.GetBytes(m.ToJsonString());
    }

    public static JsonObject Descriptor(string mediaType, byte[] content) =>
        new() { ["mediaType"] = mediaType, ["digest"] = Sha256(content), ["size"] = content.Length };

    /// <summary>Asserts the spec's error answer: the status, and a JSON body {"errors":[{"code","message",...}]} with the code.</summary>
    public static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status} {code}, got {(int)response.StatusCode}: {text}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.MediaType ?? "");
        using var doc = JsonDocument.Parse(text);
        var errors = doc.RootElement.GetProperty("errors");
        Assert.Equal(JsonValueKind.Array, errors.ValueKind);
        Assert.Contains(errors.EnumerateArray(), e =>
            e.GetProperty("code").GetString() == code && e.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String);
    }

    public static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values)
        : response.Content.Headers.TryGetValues(name, out var cv) ? string.Join(",", cv)
        : throw new InvalidDataException($"response has no {name} header");
}

/// <summary>A stream that hides its length, so HttpClient sends it with chunked transfer encoding.</summary>
public sealed class NonSeekableStream(byte[] content) : MemoryStream(content, writable: false)
{
    public override bool CanSeek => false;
}

public sealed record TestImage(string Repository, byte[] Manifest, string Digest, byte[] Config, byte[] Layer)
{
    public string LayerDigest => RegistryClient.Sha256(Layer);

    public string ConfigDigest => RegistryClient.Sha256(Config);
}
