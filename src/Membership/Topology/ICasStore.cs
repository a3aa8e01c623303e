namespace Wharf.Membership.Topology;

/// <summary>A value and the version it was read at; version 0 means the key does not exist.</summary>
public sealed record CasEntry(byte[]? Value, ulong Version);

/// <summary>
/// The one primitive the placement view and node leases need from a membership backend: read a key with its
/// version, and write it only if the version is unchanged (Consul KV <c>?cas=</c>, a Redis script, or in-process).
/// </summary>
public interface ICasStore
{
    Task<CasEntry> GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Writes when the key is still at <paramref name="expectedVersion"/> (0: only if absent). False when refused.</summary>
    Task<bool> TryPutAsync(string key, byte[] value, ulong expectedVersion, CancellationToken cancellationToken);

    /// <summary>Deletes when the key is still at <paramref name="expectedVersion"/>.</summary>
    Task<bool> TryDeleteAsync(string key, ulong expectedVersion, CancellationToken cancellationToken);
}
