using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Grains;

/// <summary>A manifest as the repository records it: its descriptor and what it references.</summary>
[GenerateSerializer, Immutable, Alias("wharf.manifest-put.v1")]
public sealed record ManifestPut(
    [property: Id(0)] Digest Digest,
    [property: Id(1)] string MediaType,
    [property: Id(2)] long Size,
    [property: Id(3)] Digest[] Blobs,
    [property: Id(4)] Digest[] Manifests,
    [property: Id(5)] Digest? Subject,
    [property: Id(6)] string? ArtifactType,
    [property: Id(7)] Dictionary<string, string>? Annotations,
    [property: Id(8)] string? ImmutableRule = null);

[GenerateSerializer, Immutable, Alias("wharf.manifest-ref.v1")]
public sealed record ManifestRef(
    [property: Id(0)] Digest Digest,
    [property: Id(1)] string MediaType,
    [property: Id(2)] long Size);

/// <summary>Outcome of a repository change: null error code means it was applied.</summary>
[GenerateSerializer, Immutable, Alias("wharf.repo-result.v1")]
public sealed record RepositoryResult(
    [property: Id(0)] string? ErrorCode,
    [property: Id(1)] string? Detail)
{
    public static readonly RepositoryResult Ok = new(null, null);

    public bool Succeeded => ErrorCode is null;
}

[GenerateSerializer, Immutable, Alias("wharf.page.v1")]
public sealed record Page(
    [property: Id(0)] string[] Items,
    [property: Id(1)] bool HasMore);

[GenerateSerializer, Immutable, Alias("wharf.referrer.v1")]
public sealed record Referrer(
    [property: Id(0)] Digest Digest,
    [property: Id(1)] string MediaType,
    [property: Id(2)] long Size,
    [property: Id(3)] string? ArtifactType,
    [property: Id(4)] Dictionary<string, string>? Annotations);

[GenerateSerializer, Immutable, Alias("wharf.referrer-page.v1")]
public sealed record ReferrerPage(
    [property: Id(0)] Referrer[] Items,
    [property: Id(1)] string? NextLast);

/// <summary>A repository's link to a blob: its size and the nodes that hold its bytes (best first).</summary>
[GenerateSerializer, Immutable, Alias("wharf.blob-link.v1")]
public sealed record BlobLink(
    [property: Id(0)] long Size,
    [property: Id(1)] string[] Holders);
