using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wharf.Silo.Storage;

// Versioned record bodies (DESIGN principle 11): every value carries V so N and N+1 can read each other.

public sealed record RepositoryHeaderRecord(int V, DateTimeOffset Created);

public sealed record TagRecord(int V, string Digest, DateTimeOffset Updated);

public sealed record ManifestRecord(
    int V,
    string Digest,
    string MediaType,
    long Size,
    string? ArtifactType,
    string? Subject,
    string[] Blobs,
    string[] Manifests,
    Dictionary<string, string>? Annotations,
    DateTimeOffset Created);

public sealed record BlobLinkRecord(int V, long Size, DateTimeOffset Created, string[]? Holders = null);

public sealed record ReferrerRecord(
    int V,
    string Digest,
    string MediaType,
    long Size,
    string? ArtifactType,
    Dictionary<string, string>? Annotations);

public sealed record UploadRecord(
    int V,
    string Repository,
    string Algorithm,
    long Offset,
    byte[] HashState,
    DateTimeOffset Started,
    DateTimeOffset Touched,
    string[]? Owners = null);

public static class RecordJson
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static byte[] Encode<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

    public static T? Decode<T>(byte[]? raw) where T : class => raw is null ? null : JsonSerializer.Deserialize<T>(raw, Options);

    public static readonly byte[] Empty = [];
}

/// <summary>The access state's version (<c>a/v</c>), raised by every change; gateways follow it.</summary>
public sealed record AccessVersionRecord(int V, long Version);
