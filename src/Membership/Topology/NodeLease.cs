using System.Text.Json;

namespace Wharf.Membership.Topology;

/// <summary>A node id is already held by another live process.</summary>
public sealed class NodeIdInUseException(string message) : Exception(message);

/// <summary>
/// Holds a node id for this process (DESIGN principle 3: a node whose id is already held by another live node
/// refuses to start). A lease key per node id, renewed by compare-and-set; a process that dies stops renewing, and
/// its id is free again once the lease expires.
/// </summary>
public sealed class NodeLease(ICasStore store, string clusterId, string nodeId, TimeSpan ttl, TimeProvider? time = null)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public string Instance { get; } = Guid.NewGuid().ToString("N");

    public string Key { get; } = $"wharf/{clusterId}/nodes/{nodeId}/lease";

    private sealed record Holder(string Instance, long ExpiresUnixMs);

    /// <summary>Takes the lease or renews it; throws <see cref="NodeIdInUseException"/> when another live process holds it.</summary>
    public async Task AcquireAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            var entry = await store.GetAsync(Key, cancellationToken);
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            if (entry.Value is { Length: > 0 } raw && JsonSerializer.Deserialize<Holder>(raw, Json) is { } holder
                && holder.Instance != Instance && holder.ExpiresUnixMs > now)
            {
                throw new NodeIdInUseException(
                    $"node id {nodeId} is held by another live process (instance {holder.Instance}) for {holder.ExpiresUnixMs - now} ms more; " +
                    "two processes must not share a data folder's node id");
            }
            var next = JsonSerializer.SerializeToUtf8Bytes(new Holder(Instance, now + (long)ttl.TotalMilliseconds), Json);
            if (await store.TryPutAsync(Key, next, entry.Version, cancellationToken))
            {
                return;
            }
        }
        throw new InvalidOperationException($"could not take the lease {Key}: it kept changing");
    }

    /// <summary>
    /// When the lease of <paramref name="nodeId"/> runs out (its holder's clock), or null when nobody holds it (never
    /// taken, or released on a clean stop). The coordinator reads it to tell live nodes from dead ones.
    /// </summary>
    public static async Task<DateTimeOffset?> ReadExpiryAsync(ICasStore store, string clusterId, string nodeId, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync($"wharf/{clusterId}/nodes/{nodeId}/lease", cancellationToken);
        return entry.Value is { Length: > 0 } raw && JsonSerializer.Deserialize<Holder>(raw, Json) is { } holder
            ? DateTimeOffset.FromUnixTimeMilliseconds(holder.ExpiresUnixMs)
            : null;
    }

    /// <summary>Gives the id back on a clean shutdown, so a restart does not wait for the lease to expire.</summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(Key, cancellationToken);
        if (entry.Value is { Length: > 0 } raw && JsonSerializer.Deserialize<Holder>(raw, Json)?.Instance == Instance)
        {
            await store.TryDeleteAsync(Key, entry.Version, cancellationToken);
        }
    }
}
