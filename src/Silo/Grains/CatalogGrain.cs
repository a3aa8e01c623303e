using Orleans.Concurrency;
using Wharf.Contracts.Grains;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// Lists repositories by merging the catalog shards' sorted keys after <c>last</c> (DESIGN principle 10):
/// each shard yields at most limit + 1 keys, so a page costs O(shards × page), never a scan of every repository.
/// </summary>
[StatelessWorker]
public sealed class CatalogGrain(RecordStore records) : Grain, ICatalogGrain
{
    public Task<Page> List(string? last, int limit)
    {
        var merged = new List<string>();
        for (var shard = 0; shard < Keys.CatalogShards; shard++)
        {
            foreach (var (name, _) in records.Scan(Keys.CatalogPrefix(shard), last, limit + 1))
            {
                merged.Add(name);
            }
        }
        merged.Sort(StringComparer.Ordinal);
        var items = merged.Take(limit).ToArray();
        return Task.FromResult(new Page(items, merged.Count > limit));
    }
}
