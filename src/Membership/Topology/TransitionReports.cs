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
}
