namespace Wharf.Membership.Topology;

/// <summary>The localhost backend: one process, so the "cluster-wide" keys live in the host's memory.</summary>
public sealed class LocalCasStore : ICasStore
{
    private readonly Dictionary<string, CasEntry> _entries = new(StringComparer.Ordinal);
    private ulong _version;

    public Task<CasEntry> GetAsync(string key, CancellationToken cancellationToken)
    {
        lock (_entries)
        {
            return Task.FromResult(_entries.TryGetValue(key, out var e) ? e : new CasEntry(null, 0));
        }
    }

    public Task<bool> TryPutAsync(string key, byte[] value, ulong expectedVersion, CancellationToken cancellationToken)
    {
        lock (_entries)
        {
            var current = _entries.TryGetValue(key, out var e) ? e.Version : 0;
            if (current != expectedVersion)
            {
                return Task.FromResult(false);
            }
            _entries[key] = new CasEntry(value, ++_version);
            return Task.FromResult(true);
        }
    }

    public Task<bool> TryDeleteAsync(string key, ulong expectedVersion, CancellationToken cancellationToken)
    {
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out var e) || e.Version != expectedVersion)
            {
                return Task.FromResult(false);
            }
            _entries.Remove(key);
            return Task.FromResult(true);
        }
    }
}
