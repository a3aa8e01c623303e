using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>A descriptor as written in manifests: media type, digest and size.</summary>
public sealed record Blob(string MediaType, string Digest, long Size);

/// <summary>One image written into a layout: its manifest, config and layers (with their uncompressed diff ids).</summary>
public sealed record LayoutImage(Blob Manifest, Blob Config, IReadOnlyList<Blob> Layers, IReadOnlyList<string> DiffIds, string Architecture);

/// <summary>
/// Writes OCI image layouts (image-spec "image-layout.md") offline: <c>oci-layout</c>, <c>index.json</c> and
/// <c>blobs/sha256/*</c>. Layers are real gzip'd tars made with System.Formats.Tar, so every client can unpack them.
/// </summary>
public sealed class OciLayout
{
    public const string ManifestType = "application/vnd.oci.image.manifest.v1+json";
    public const string IndexType = "application/vnd.oci.image.index.v1+json";
    public const string ConfigType = "application/vnd.oci.image.config.v1+json";
    public const string LayerType = "application/vnd.oci.image.layer.v1.tar+gzip";
    private const string RefName = "org.opencontainers.image.ref.name";
    private static readonly DateTimeOffset Epoch = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly List<JsonObject> entries = [];

    public OciLayout(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.Combine(path, "blobs", "sha256"));
        File.WriteAllText(System.IO.Path.Combine(path, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        WriteIndexJson();
    }

    public string Path { get; }

    /// <summary>The reference skopeo and podman use for a tag of this layout.</summary>
    public string Reference(string tag) => $"oci:{Path}:{tag}";

    public string BlobPath(string digest) => System.IO.Path.Combine(Path, "blobs", "sha256", digest["sha256:".Length..]);

    /// <summary>
    /// Adds a single-platform image whose layers hold the given number of random bytes each (random, so that gzip
    /// cannot shrink them and every run pushes new content), tagged <paramref name="tag"/> when not null.
    /// </summary>
    public LayoutImage AddImage(string? tag, IReadOnlyList<int> layerSizes, string architecture = "amd64", string os = "linux")
    {
        var layers = new List<Blob>();
        var diffIds = new List<string>();
        for (var i = 0; i < layerSizes.Count; i++)
        {
            var (layer, diffId) = WriteLayer(i, layerSizes[i]);
            layers.Add(layer);
            diffIds.Add(diffId);
        }
        var config = new JsonObject
        {
            ["created"] = Epoch.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["architecture"] = architecture,
            ["os"] = os,
            ["config"] = new JsonObject { ["Cmd"] = new JsonArray("/bin/sh"), ["Env"] = new JsonArray("PATH=/bin") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. diffIds.Select(d => (JsonNode)d!)]) },
            ["history"] = new JsonArray([.. diffIds.Select((_, i) => (JsonNode)new JsonObject { ["created_by"] = $"wharf e2e layer {i}" })]),
        };
        var configBlob = WriteBlob(ConfigType, Encoding.UTF8.GetBytes(config.ToJsonString()));
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = ManifestType,
            ["config"] = Descriptor(configBlob),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)Descriptor(l))]),
        };
        var manifestBlob = WriteBlob(ManifestType, Encoding.UTF8.GetBytes(manifest.ToJsonString()));
        if (tag is not null)
        {
            AddEntry(manifestBlob, tag, null);
        }
        return new LayoutImage(manifestBlob, configBlob, layers, diffIds, architecture);
    }

    /// <summary>Adds an image index over the given images (each with its platform), tagged <paramref name="tag"/>.</summary>
    public Blob AddIndex(string tag, IReadOnlyList<LayoutImage> images)
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = IndexType,
            ["manifests"] = new JsonArray([.. images.Select(image =>
            {
                var d = Descriptor(image.Manifest);
                d["platform"] = new JsonObject { ["architecture"] = image.Architecture, ["os"] = "linux" };
                return (JsonNode)d;
            })]),
        };
        var blob = WriteBlob(IndexType, Encoding.UTF8.GetBytes(index.ToJsonString()));
        AddEntry(blob, tag, null);
        return blob;
    }

    /// <summary>The manifest or index a tag of this layout points at (as a client wrote it, for layouts read back).</summary>
    public static Blob ReadTag(string layoutPath, string tag)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(layoutPath, "index.json")));
        foreach (var m in doc.RootElement.GetProperty("manifests").EnumerateArray())
        {
            if (m.TryGetProperty("annotations", out var a) && a.TryGetProperty(RefName, out var name) && name.GetString() == tag)
            {
                return new Blob(m.GetProperty("mediaType").GetString()!, m.GetProperty("digest").GetString()!, m.GetProperty("size").GetInt64());
            }
        }
        throw new InvalidOperationException($"tag {tag} is not in {layoutPath}/index.json");
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    public static string Sha256File(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private (Blob Layer, string DiffId) WriteLayer(int index, int size)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, $"layer{index}/") { ModificationTime = Epoch, Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute });
            var data = new byte[size];
            Random.Shared.NextBytes(data);
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"layer{index}/random.bin")
            {
                ModificationTime = Epoch,
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                DataStream = new MemoryStream(data),
            });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"layer{index}/id.txt")
            {
                ModificationTime = Epoch,
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes($"layer {index} of a Wharf end-to-end image, {Guid.NewGuid()}\n")),
            });
        }
        var diffId = Sha256(tar.ToArray());
        using var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            tar.Position = 0;
            tar.CopyTo(gzip);
        }
        return (WriteBlob(LayerType, gz.ToArray()), diffId);
    }

    private Blob WriteBlob(string mediaType, byte[] bytes)
    {
        var digest = Sha256(bytes);
        File.WriteAllBytes(BlobPath(digest), bytes);
        return new Blob(mediaType, digest, bytes.Length);
    }

    private static JsonObject Descriptor(Blob blob) => new()
    {
        ["mediaType"] = blob.MediaType,
        ["digest"] = blob.Digest,
        ["size"] = blob.Size,
    };

    private void AddEntry(Blob blob, string tag, JsonObject? platform)
    {
        var d = Descriptor(blob);
        d["annotations"] = new JsonObject { [RefName] = tag };
        if (platform is not null)
        {
            d["platform"] = platform;
        }
        entries.Add(d);
        WriteIndexJson();
    }

    private void WriteIndexJson()
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new JsonArray([.. entries.Select(e => e.DeepClone())]),
        };
        File.WriteAllText(System.IO.Path.Combine(Path, "index.json"), index.ToJsonString());
    }
}
