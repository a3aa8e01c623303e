using Orleans.Concurrency;
using Wharf.Contracts.Grains;
using Wharf.Silo.Placement;
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

/// <summary>One catalog shard's sorted entries, on the owner of that shard.</summary>
[Reentrant, ShardOwnerPlacement, GrainType(GrainTypes.CatalogShard)]
public sealed class CatalogShardGrain(RecordStore records) : Grain, ICatalogShardGrain
{
    private int Shard => (int)this.GetPrimaryKeyLong();

    public Task Add(string repository)
    {
        var key = Keys.CatalogPrefix(Shard) + repository;
        if (!records.Exists(key))
        {
            records.Write(new RecordBatch().Put(key, RecordJson.Empty));
        }
        return Task.CompletedTask;
    }

    public Task<Page> List(string? last, int limit)
    {
        var page = records.Scan(Keys.CatalogPrefix(Shard), last, limit + 1);
        return Task.FromResult(new Page([.. page.Take(limit).Select(kv => kv.Key)], page.Count > limit));
    }
}
