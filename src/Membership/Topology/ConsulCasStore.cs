using Wharf.Membership.Consul;

namespace Wharf.Membership.Topology;

/// <summary>Consul KV: the version is the key's <c>ModifyIndex</c>; writes use <c>?cas=</c> (0 = create only).</summary>
public sealed class ConsulCasStore(ConsulClient consul) : ICasStore
{
    public async Task<CasEntry> GetAsync(string key, CancellationToken cancellationToken)
    {
        var pair = await consul.GetAsync(key, cancellationToken);
        return pair is null ? new CasEntry(null, 0) : new CasEntry(pair.Value ?? [], pair.ModifyIndex);
    }

    public Task<bool> TryPutAsync(string key, byte[] value, ulong expectedVersion, CancellationToken cancellationToken) =>
        consul.PutAsync(key, value, expectedVersion, cancellationToken);

    public async Task<bool> TryDeleteAsync(string key, ulong expectedVersion, CancellationToken cancellationToken)
    {
        var result = await consul.TxnAsync(
            [ConsulTxnOp.Kv(ConsulKvVerb.DeleteCas, key, index: expectedVersion)],
            cancellationToken);
        return result.Committed;
    }
}
