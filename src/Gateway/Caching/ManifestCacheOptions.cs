namespace Wharf.Gateway.Caching;

/// <summary>
/// <c>Wharf:Gateway</c>: what a gateway caches (DESIGN principle 7). <see cref="ManifestCacheMiB"/> is read by the
/// gateway (the all-in-one's too); <see cref="TagLeaseSeconds"/> by the silos, whose repository grains grant the
/// leases — it must be the same on every silo.
/// </summary>
public sealed class ManifestCacheOptions
{
    public const string Section = "Wharf:Gateway";

    /// <summary>Bytes of manifest bodies kept by digest, in MiB. 0 turns every manifest cache of the gateway off.</summary>
    public int ManifestCacheMiB { get; set; } = 64;

    /// <summary>How long a gateway may answer a repository's tags and manifests from its cache without asking. 0: no leases.</summary>
    public double TagLeaseSeconds { get; set; } = 5;

    public bool Enabled => ManifestCacheMiB > 0;

    /// <summary>
    /// Bytes of blobs kept by digest in this gateway's memory, in MiB (a pull storm of one image is then served without
    /// asking a silo); blobs larger than an eighth of it are always streamed. 0 turns it off; the all-in-one, which
    /// reads its own disk, defaults to 0.
    /// </summary>
    public int BlobCacheMiB { get; set; } = 128;

    /// <summary>The largest blob the blob cache keeps, in MiB (and never more than an eighth of it); larger ones are streamed.</summary>
    public int BlobCacheMaxBlobMiB { get; set; } = 4;

    /// <summary>
    /// How this gateway moves blob bytes to and from silos: <c>Http</c> (the default) uses a silo's HTTP/1.1 bulk port
    /// for reads, blob writes and appends when the silo serves one; <c>Grpc</c> keeps everything on the gRPC byte service.
    /// </summary>
    public string ByteTransport { get; set; } = "Http";

    public Bytes.ByteTransport Transport => Enum.Parse<Bytes.ByteTransport>(ByteTransport, ignoreCase: true);

    public IEnumerable<string> Validate()
    {
        if (!Enum.TryParse<Bytes.ByteTransport>(ByteTransport, ignoreCase: true, out _) || int.TryParse(ByteTransport, out _))
        {
            yield return "Wharf:Gateway:ByteTransport must be Http or Grpc";
        }
        if (ManifestCacheMiB < 0)
        {
            yield return "Wharf:Gateway:ManifestCacheMiB must be 0 (off) or a positive number of MiB";
        }
        if (BlobCacheMiB < 0)
        {
            yield return "Wharf:Gateway:BlobCacheMiB must be 0 (off) or a positive number of MiB";
        }
        if (BlobCacheMaxBlobMiB < 1)
        {
            yield return "Wharf:Gateway:BlobCacheMaxBlobMiB must be at least 1";
        }
        if (TagLeaseSeconds is < 0 or > 60)
        {
            yield return "Wharf:Gateway:TagLeaseSeconds must be between 0 (no leases) and 60 (a tag move waits up to one lease for a silent gateway)";
        }
    }
}
