using Orleans.Concurrency;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Placement;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// Lists repositories by merging the catalog shards' sorted keys after <c>last</c> (DESIGN principle 10):
/// each shard yields at most limit + 1 keys, so a page costs O(shards × page), never a scan of every repository.
/// </summary>
[StatelessWorker]
public sealed class CatalogGrain : Grain, ICatalogGrain
{
    public async Task<Page> List(string? last, int limit)
    {
        var pages = await Task.WhenAll(Enumerable.Range(0, Keys.CatalogShards)
            .Select(shard => GrainFactory.GetGrain<ICatalogShardGrain>(shard).List(last, limit)));
        var merged = pages.SelectMany(p => p.Items).Order(StringComparer.Ordinal).ToList();
        var hasMore = merged.Count > limit || pages.Any(p => p.HasMore);
        return new Page([.. merged.Take(limit)], hasMore);
    }
}

/// <summary>One catalog shard's sorted entries, a replicated log of its own, led from an owner of that shard.</summary>
[Reentrant, ShardOwnerPlacement, GrainType(GrainTypes.CatalogShard)]
public sealed class CatalogShardGrain(RecordStore records, ReplicatedLogs logs) : LogGrain(logs), ICatalogShardGrain
{
    private int CatalogShard => (int)this.GetPrimaryKeyLong();

    protected override string LogId => "c/" + CatalogShard.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public async Task Add(string repository)
    {
        var key = Keys.CatalogPrefix(CatalogShard) + repository;
        if (!records.Exists(key))
        {
            // Idempotent: a concurrent add of the same name writes the same key.
            await AppendAsync(new RecordBatch().Put(key, RecordJson.Empty));
        }
    }

    public async Task<Page> List(string? last, int limit)
    {
        await ReadableAsync();
        var page = records.Scan(Keys.CatalogPrefix(CatalogShard), last, limit + 1);
        return new Page([.. page.Take(limit).Select(kv => kv.Key)], page.Count > limit);
    }
}
