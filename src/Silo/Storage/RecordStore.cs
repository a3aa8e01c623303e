using System.Text;
using RocksDbSharp;

namespace Wharf.Silo.Storage;

/// <summary>
/// The silo's RocksDB: every record, the blob index, manifests, small blobs and upload state (DESIGN principle 9).
/// Keys are UTF-8 strings laid out so that one repository's records sort together (see Keys).
/// Writes are whole batches with the WAL synced before they return: acknowledged means durable.
/// </summary>
public sealed class RecordStore : IDisposable
{
    private readonly RocksDb _db;
    private readonly WriteOptions _synced = new WriteOptions().SetSync(true);

    private RecordStore(RocksDb db) => _db = db;

    public static RecordStore Open(string path)
    {
        Directory.CreateDirectory(path);
        // Memtables bounded so memory does not grow with pushes: 2 × 16 MiB, and no more than 64 MiB of WAL.
        var options = new DbOptions()
            .SetCreateIfMissing(true)
            .SetWriteBufferSize(16UL << 20)
            .SetMaxWriteBufferNumber(2)
            .SetMaxTotalWalSize(64UL << 20)
            .SetMaxOpenFiles(512)
            .SetKeepLogFileNum(3);
        return new RecordStore(RocksDb.Open(options, path));
    }

    public byte[]? Get(string key) => _db.Get(Encoding.UTF8.GetBytes(key));

    public bool Exists(string key) => _db.Get(Encoding.UTF8.GetBytes(key)) is not null;

    /// <summary>Applies the batch whole or not at all, WAL synced.</summary>
    public void Write(RecordBatch batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        using var wb = new WriteBatch();
        foreach (var (key, value) in batch.Operations)
        {
            var k = Encoding.UTF8.GetBytes(key);
            if (value is null)
            {
                wb.Delete(k);
            }
            else
            {
                wb.Put(k, value);
            }
        }
        _db.Write(wb, _synced);
    }

    /// <summary>Keys under <paramref name="prefix"/> strictly after <paramref name="after"/> (a suffix), in byte order.</summary>
    public List<KeyValuePair<string, byte[]>> Scan(string prefix, string? after, int limit)
    {
        var result = new List<KeyValuePair<string, byte[]>>(Math.Min(limit, 1024));
        var prefixBytes = Encoding.UTF8.GetBytes(prefix);
        var start = after is null ? prefixBytes : Encoding.UTF8.GetBytes(prefix + after);
        using var it = _db.NewIterator();
        it.Seek(start);
        while (it.Valid() && result.Count < limit)
        {
            var key = it.Key();
            if (!key.AsSpan().StartsWith(prefixBytes))
            {
                break;
            }
            var suffix = Encoding.UTF8.GetString(key.AsSpan(prefixBytes.Length));
            if (after is null || suffix != after)
            {
                result.Add(new(suffix, it.Value()));
            }
            it.Next();
        }
        return result;
    }

    /// <summary>A RocksDB property (<c>rocksdb.estimate-num-keys</c>, ...), for metrics and readiness.</summary>
    public string? Property(string name) => _db.GetProperty(name);

    public void Dispose() => _db.Dispose();
}

/// <summary>A set of puts and deletes applied atomically.</summary>
public sealed class RecordBatch
{
    private readonly List<(string Key, byte[]? Value)> _operations = [];

    public IReadOnlyList<(string Key, byte[]? Value)> Operations => _operations;

    public int Count => _operations.Count;

    public RecordBatch Put(string key, byte[] value)
    {
        _operations.Add((key, value));
        return this;
    }

    public RecordBatch Delete(string key)
    {
        _operations.Add((key, null));
        return this;
    }
}
