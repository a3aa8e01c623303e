namespace Wharf.Silo.Storage;

/// <summary>
/// Where a repository grain appends its batches (DESIGN principle 5). On one node a batch is one synced RocksDB
/// write batch; the replication issue puts a ballot-fenced quorum log behind this same interface.
/// </summary>
public interface IRepositoryLog
{
    /// <summary>Applies the batch whole or not at all; returns once it is durable.</summary>
    ValueTask AppendAsync(string repository, RecordBatch batch);
}

public sealed class LocalRepositoryLog(RecordStore store) : IRepositoryLog
{
    public ValueTask AppendAsync(string repository, RecordBatch batch)
    {
        store.Write(batch);
        return ValueTask.CompletedTask;
    }
}
