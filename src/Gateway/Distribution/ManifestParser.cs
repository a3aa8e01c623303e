using System.Text.Json;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Distribution;

/// <summary>
/// Reads what the registry must know of a pushed manifest (image-spec manifest.md, image-index.md, and Docker's
/// schema 2): its media type, the blobs and child manifests it references, its subject and artifact type.
/// </summary>
public static class ManifestParser
{
    private const string ForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    private const string ForeignLayerOci = "application/vnd.oci.image.layer.nondistributable.v1.tar";

    public static ManifestPut Parse(ReadOnlySpan<byte> body, string? contentType, Digest digest)
    {
        try
        {
            // A repeated member is refused: readers disagree on which one counts (Go keeps the last, others the first),
            // so the registry and a client could see different configs or layers in the same bytes.
            using var doc = JsonDocument.Parse(body.ToArray(), new JsonDocumentOptions { MaxDepth = 64, AllowDuplicateProperties = false });
            return Read(doc.RootElement, body.Length, contentType, digest);
        }
        catch (JsonException e)
        {
            throw Invalid($"manifest is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            // Valid JSON may escape half of a surrogate pair ("\ud800"), which has no UTF-16 text: System.Text.Json
            // throws this when such a name or string is compared or read.
            throw Invalid($"manifest holds a string that is not valid UTF-16: {e.Message}");
        }
    }

    private static ManifestPut Read(JsonElement root, int length, string? contentType, Digest digest)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw Invalid("manifest must be a JSON object");
        }
        if (!root.TryGetProperty("schemaVersion", out var sv) || sv.ValueKind != JsonValueKind.Number || !sv.TryGetInt32(out var version) || version != 2)
        {
            throw Invalid("only schemaVersion 2 manifests are supported");
        }
        var bodyType = OptionalString(root, "mediaType");
        var headerType = contentType?.Split(';')[0].Trim();
        if (string.IsNullOrEmpty(headerType))
        {
            headerType = null;
        }
        if (bodyType is not null && headerType is not null && bodyType != headerType)
        {
            throw Invalid($"Content-Type {headerType} does not match the manifest's mediaType {bodyType}");
        }
        var mediaType = bodyType ?? headerType ?? Guess(root);
        if (!MediaTypes.IsManifest(mediaType))
        {
            throw Invalid($"unsupported manifest media type '{mediaType}'");
        }
        var blobs = new List<Digest>();
        var manifests = new List<Digest>();
        string? artifactType = OptionalString(root, "artifactType");
        if (MediaTypes.IsIndex(mediaType))
        {
            foreach (var d in Descriptors(root, "manifests", required: true))
            {
                manifests.Add(DescriptorDigest(d));
            }
        }
        else
        {
            if (!root.TryGetProperty("config", out var config) || config.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("an image manifest needs a config descriptor");
            }
            blobs.Add(DescriptorDigest(config));
            artifactType ??= OptionalString(config, "mediaType");
            foreach (var layer in Descriptors(root, "layers", required: true))
            {
                var layerType = OptionalString(layer, "mediaType");
                // Foreign layers live elsewhere (their urls); the registry does not hold them.
                if (layerType is ForeignLayer or ForeignLayerOci && layer.TryGetProperty("urls", out _))
                {
                    continue;
                }
                blobs.Add(DescriptorDigest(layer));
            }
        }
        Digest? subject = null;
        if (root.TryGetProperty("subject", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind != JsonValueKind.Object)
            {
                throw Invalid("subject must be a descriptor");
            }
            subject = DescriptorDigest(s);
        }
        Dictionary<string, string>? annotations = null;
        if (root.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
        {
            annotations = [];
            foreach (var p in a.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.String)
                {
                    annotations[p.Name] = p.Value.GetString()!;
                }
            }
        }
        return new ManifestPut(digest, mediaType, length, [.. blobs.Distinct()], [.. manifests.Distinct()], subject, artifactType, annotations);
    }

    /// <summary>A Docker schema 2 manifest without mediaType cannot be told apart reliably; an OCI one may omit it.</summary>
    private static string Guess(JsonElement root) =>
        root.TryGetProperty("manifests", out _) ? MediaTypes.OciIndex : MediaTypes.OciManifest;

    private static IEnumerable<JsonElement> Descriptors(JsonElement root, string property, bool required)
    {
        if (!root.TryGetProperty(property, out var array) || array.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                throw Invalid($"'{property}' is required");
            }
            yield break;
        }
        if (array.ValueKind != JsonValueKind.Array)
        {
            throw Invalid($"'{property}' must be an array");
        }
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw Invalid($"'{property}' must hold descriptors");
            }
            yield return item;
        }
    }

    private static Digest DescriptorDigest(JsonElement descriptor)
    {
        var text = OptionalString(descriptor, "digest");
        if (text is null || !Digest.TryParse(text, out var digest))
        {
            throw Invalid($"descriptor has an invalid digest '{text}'");
        }
        if (!descriptor.TryGetProperty("size", out var size) || size.ValueKind != JsonValueKind.Number || !size.TryGetInt64(out var n) || n < 0)
        {
            throw Invalid($"descriptor {text} has an invalid size");
        }
        return digest.Value;
    }

    private static string? OptionalString(JsonElement e, string property) =>
        e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static RegistryException Invalid(string detail) => new(ErrorCode.ManifestInvalid, detail);
}
