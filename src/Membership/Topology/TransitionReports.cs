namespace Wharf.Membership.Topology;

/// <summary>
/// Where nodes say they have synced the shards a transition gave them (docs/architecture.md "View changes"): one key
/// per transition epoch and node in the membership backend. The coordinator ends a transition once every node that
/// gained shards has reported.
/// </summary>
public sealed class TransitionReports(ICasStore store, string clusterId)
{
    private string Key(long transitionEpoch, string nodeId) => $"wharf/{clusterId}/transitions/{transitionEpoch}/synced/{nodeId}";

    public async Task ReportSyncedAsync(long transitionEpoch, string nodeId, CancellationToken cancellationToken)
    {
        var key = Key(transitionEpoch, nodeId);
        var entry = await store.GetAsync(key, cancellationToken);
        if (entry.Version == 0)
        {
            await store.TryPutAsync(key, BitConverter.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), 0, cancellationToken);
        }
    }

    public async Task<bool> IsSyncedAsync(long transitionEpoch, string nodeId, CancellationToken cancellationToken) =>
        (await store.GetAsync(Key(transitionEpoch, nodeId), cancellationToken)).Version != 0;

    private string DrainedKey(string nodeId) => $"wharf/{clusterId}/drained/{nodeId}";

    /// <summary>A draining node says it holds no data any more (every key it had is on its owners): it may be removed.</summary>
    public async Task ReportDrainedAsync(string nodeId, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(DrainedKey(nodeId), cancellationToken);
        if (entry.Version == 0)
        {
            await store.TryPutAsync(DrainedKey(nodeId), BitConverter.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), 0, cancellationToken);
        }
    }

    public async Task<bool> IsDrainedAsync(string nodeId, CancellationToken cancellationToken) =>
        (await store.GetAsync(DrainedKey(nodeId), cancellationToken)).Version != 0;

    /// <summary>Clears a drained report (a node that is drained again later, after rejoining).</summary>
    public async Task ClearDrainedAsync(string nodeId, CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(DrainedKey(nodeId), cancellationToken);
        if (entry.Version != 0)
        {
            await store.TryDeleteAsync(DrainedKey(nodeId), entry.Version, cancellationToken);
        }
    }
}
