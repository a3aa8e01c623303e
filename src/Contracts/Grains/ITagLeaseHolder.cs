namespace Wharf.Contracts.Grains;

/// <summary>
/// A gateway's receiver of lease revocations (DESIGN principle 7): one Orleans observer per gateway, handed to a
/// repository grain with every leased resolution. A revocation drops everything the gateway cached for the
/// repository under its lease; the grain acknowledges a tag move only after every live lease was revoked or ran out.
/// </summary>
[Alias("wharf.ITagLeaseHolder")]
public interface ITagLeaseHolder : IGrainObserver
{
    /// <summary>Forget every resolution of <paramref name="repository"/> cached under a lease; answer once forgotten.</summary>
    [Alias("Revoke")]
    Task Revoke(string repository);
}

/// <summary>
/// A resolution and the lease it may be cached under: <see cref="Lease"/> counted from when the caller SENT the
/// request (never later: the grain's own lease ends no earlier). Zero when it must not be cached (nothing found, or
/// leases are off).
/// </summary>
[GenerateSerializer, Immutable, Alias("wharf.leased-manifest.v1")]
public sealed record LeasedManifest(
    [property: Id(0)] ManifestRef? Manifest,
    [property: Id(1)] TimeSpan Lease);
