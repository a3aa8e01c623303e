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

    private readonly WriteOptions _unsynced = new WriteOptions().SetSync(false);

    /// <summary>
    /// A deleted record in a replicated log (DESIGN principle 5): a versioned tombstone, so that repair cannot bring
    /// the record back from a replica that missed the delete. Every other value is JSON, protobuf or empty, none of
    /// which starts with a zero byte; reads treat a tombstone as absent.
    /// </summary>
    public static byte[] Tombstone(long seq)
    {
        var value = new byte[9];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(value.AsSpan(1), seq);
        return value;
    }

    public static bool IsTombstone(ReadOnlySpan<byte> value) => value.Length == 9 && value[0] == 0;

    /// <summary>A live record's value; null when absent or a tombstone.</summary>
    public byte[]? Get(string key)
    {
        using var use = Enter();
        var value = _db.Get(Encoding.UTF8.GetBytes(key));
        return value is null || IsTombstone(value) ? null : value;
    }

    /// <summary>Live values of several keys as of one moment (a snapshot): a batch is seen whole or not at all.</summary>
    public byte[]?[] GetMany(IReadOnlyList<string> keys)
    {
        using var use = Enter();
        using var snapshot = _db.CreateSnapshot();
        var read = new ReadOptions().SetSnapshot(snapshot);
        var values = new byte[]?[keys.Count];
        for (var i = 0; i < keys.Count; i++)
        {
            var value = _db.Get(Encoding.UTF8.GetBytes(keys[i]), readOptions: read);
            values[i] = value is null || IsTombstone(value) ? null : value;
        }
        return values;
    }

    /// <summary>The stored value, tombstones included.</summary>
    public byte[]? GetRaw(string key)
    {
        using var use = Enter();
        return _db.Get(Encoding.UTF8.GetBytes(key));
    }

    public bool Exists(string key) => Get(key) is not null;

    /// <summary>Applies the batch whole or not at all, WAL synced.</summary>
    public void Write(RecordBatch batch) => Write(batch, sync: true);

    /// <summary>Applies the batch whole or not at all; WAL synced unless <paramref name="sync"/> is false.</summary>
    public void Write(RecordBatch batch, bool sync)
    {
        if (batch.Count == 0)
        {
            return;
        }
        using var use = Enter();
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
        _db.Write(wb, sync ? _synced : _unsynced);
    }

    /// <summary>Live keys under <paramref name="prefix"/> strictly after <paramref name="after"/> (a suffix), in byte order.</summary>
    public List<KeyValuePair<string, byte[]>> Scan(string prefix, string? after, int limit) => Scan(prefix, after, limit, tombstones: false);

    /// <summary>Keys under <paramref name="prefix"/> after <paramref name="after"/>; tombstones only when asked for.</summary>
    public List<KeyValuePair<string, byte[]>> Scan(string prefix, string? after, int limit, bool tombstones)
    {
        var result = new List<KeyValuePair<string, byte[]>>(Math.Min(limit, 1024));
        var prefixBytes = Encoding.UTF8.GetBytes(prefix);
        var start = after is null ? prefixBytes : Encoding.UTF8.GetBytes(prefix + after);
        using var use = Enter();
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
            var value = it.Value();
            if ((after is null || suffix != after) && (tombstones || !IsTombstone(value)))
            {
                result.Add(new(suffix, value));
            }
            it.Next();
        }
        return result;
    }

    /// <summary>
    /// Visits keys under <paramref name="prefix"/> in byte order (tombstones included). The visitor answers null to go
    /// on to the next key, or a suffix to seek to (skipping everything before it), or <see cref="StopWalk"/>.
    /// </summary>
    public void Walk(string prefix, Func<string, byte[], string?> visit)
    {
        var prefixBytes = Encoding.UTF8.GetBytes(prefix);
        using var use = Enter();
        using var it = _db.NewIterator();
        it.Seek(prefixBytes);
        while (it.Valid())
        {
            var key = it.Key();
            if (!key.AsSpan().StartsWith(prefixBytes))
            {
                break;
            }
            var next = visit(Encoding.UTF8.GetString(key.AsSpan(prefixBytes.Length)), it.Value());
            if (next is null)
            {
                it.Next();
            }
            else if (ReferenceEquals(next, StopWalk))
            {
                break;
            }
            else
            {
                it.Seek(Encoding.UTF8.GetBytes(prefix + next));
            }
        }
    }

    /// <summary>What a <see cref="Walk"/> visitor answers to stop.</summary>
    public static readonly string StopWalk = new('\uffff', 1);

    /// <summary>A RocksDB property (<c>rocksdb.estimate-num-keys</c>, ...), for metrics and readiness.</summary>
    public string? Property(string name)
    {
        using var use = Enter();
        return _db.GetProperty(name);
    }

    // Calls in progress, and whether the store is closing: RocksDB's handles are freed by Dispose, and a call that
    // reached native code after that would read freed memory (a silo's background work still running at shutdown).
    private int _active;
    private int _closing;

    private Use Enter()
    {
        Interlocked.Increment(ref _active);
        if (Volatile.Read(ref _closing) != 0)
        {
            Interlocked.Decrement(ref _active);
            throw new ObjectDisposedException(nameof(RecordStore), "the store is closed (the node is shutting down)");
        }
        return new Use(this);
    }

    private readonly struct Use(RecordStore store) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref store._active);
    }

    /// <summary>Refuses new calls, waits (up to 10 s) for the calls in progress, then closes RocksDB.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref _active) != 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(1);
        }
        _db.Dispose();
    }
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
