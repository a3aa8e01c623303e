using System.Collections.Concurrent;
using System.Text.Json;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Silo.Storage;

/// <summary>
/// This node's blob bytes (DESIGN principle 9): blobs up to <see cref="InlineThreshold"/> bytes are RocksDB values;
/// larger ones are immutable content-addressed files beside the database (written once, fsync, rename into place,
/// directory fsync). An upload appends to its own part file; committing a large one is a rename.
/// It implements the byte service the gateway calls (in-process in the all-in-one).
/// </summary>
public sealed partial class BlobStore : IByteService
{
    /// <summary>See docs/architecture.md, "Small blobs": the measured cut between RocksDB values and files.</summary>
    public const int InlineThreshold = 32 * 1024;

    private readonly RecordStore _records;
    private readonly string _blobRoot;
    private readonly string _uploadRoot;
    private readonly string _tmpRoot;
    private readonly string _corruptRoot;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _uploadLocks = new();

    /// <param name="capacityBytes">
    /// The most blob bytes this node holds (<c>Wharf:Node:CapacityBytes</c>; 0: as many as the disk takes). A write that
    /// would pass it is refused as UNAVAILABLE before anything is visible, as a full disk is: the gateway then writes a
    /// hinted copy elsewhere or answers 503, and repair does not copy onto this node.
    /// </param>
    /// <param name="directWrites">
    /// Write blob and upload files with direct I/O where the filesystem takes it (<c>Wharf:Node:DirectWrites</c>,
    /// default true; see <see cref="BlobFileWriter"/>); <see cref="DirectWrites"/> says whether it does.
    /// </param>
    public BlobStore(RecordStore records, string dataPath, long capacityBytes = 0, bool directWrites = true)
    {
        _capacity = capacityBytes;
        _records = records;
        _blobRoot = Path.Combine(dataPath, "blobs");
        _uploadRoot = Path.Combine(dataPath, "uploads");
        _tmpRoot = Path.Combine(dataPath, "tmp");
        _corruptRoot = Path.Combine(dataPath, "corrupt");
        Directory.CreateDirectory(_blobRoot);
        Directory.CreateDirectory(_uploadRoot);
        Directory.CreateDirectory(_tmpRoot);
        DirectWrites = directWrites && BlobFileWriter.SupportsDirect(_tmpRoot);
        // A crash mid-write leaves only temporaries, never a visible half blob.
        foreach (var f in Directory.EnumerateFiles(_tmpRoot))
        {
            File.Delete(f);
        }
        if (_capacity > 0)
        {
            Digest? after = null;
            List<StoredBlob> page;
            do
            {
                page = ListBlobs(after, 4096);
                foreach (var blob in page)
                {
                    _held += blob.Size;
                    after = blob.Digest;
                }
            }
            while (page.Count == 4096);
        }
    }

    private readonly long _capacity;
    private long _held;

    /// <summary>Whether blob and upload files are written with direct I/O (asked for, and the filesystem takes it).</summary>
    public bool DirectWrites { get; }

    /// <summary>Blob bytes indexed here (counted only when a capacity is set; else 0).</summary>
    public long HeldBytes => Interlocked.Read(ref _held);

    public long CapacityBytes => _capacity;

    /// <summary>Refuses, as a full disk does, a write that would take this node past its capacity.</summary>
    private void EnsureRoom(long more)
    {
        if (_capacity > 0 && more > 0 && Interlocked.Read(ref _held) + more > _capacity)
        {
            throw new RegistryException(ErrorCode.Unavailable, $"storage is full: this node holds {Interlocked.Read(ref _held)} of its {_capacity} bytes (Wharf:Node:CapacityBytes)");
        }
    }

    /// <summary>
    /// <see cref="EnsureRoom"/> for a blob this node does not hold yet (the same blob again is deduplicated, no new
    /// bytes). Without a capacity it reads nothing: a push pays no extra index lookup.
    /// </summary>
    private void EnsureRoomFor(Digest digest, long more)
    {
        if (_capacity > 0 && Index(digest) is null)
        {
            EnsureRoom(more);
        }
    }

    private void Held(long delta)
    {
        if (_capacity > 0)
        {
            Interlocked.Add(ref _held, delta);
        }
    }

    private sealed record BlobIndexEntry(int V, long Size, bool Inline);

    private string BlobPath(Digest d) => Path.Combine(_blobRoot, d.Algorithm, d.Hex[..2], d.Hex);

    private string UploadPath(string uploadId) => Path.Combine(_uploadRoot, uploadId + ".part");

    private BlobIndexEntry? Index(Digest digest)
    {
        var raw = _records.Get(Keys.BlobIndex(digest));
        return raw is null ? null : JsonSerializer.Deserialize<BlobIndexEntry>(raw);
    }

    public Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken) =>
        Task.FromResult(Index(digest)?.Size);

    public Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken)
    {
        var entry = Index(digest);
        if (entry is null || offset < 0 || length < 0 || offset + length > entry.Size)
        {
            return Task.FromResult<Stream?>(null);
        }
        if (entry.Inline)
        {
            var bytes = _records.Get(Keys.BlobInline(digest));
            if (bytes is null)
            {
                return Task.FromResult<Stream?>(null);
            }
            return Task.FromResult<Stream?>(new MemoryStream(bytes, (int)offset, (int)length, writable: false));
        }
        var fs = new FileStream(BlobPath(digest), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        fs.Position = offset;
        return Task.FromResult<Stream?>(new BoundedStream(fs, length));
    }

    public async Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken)
    {
        var tmp = Path.Combine(_tmpRoot, Guid.NewGuid().ToString("N"));
        try
        {
            EnsureRoomFor(digest, expectedLength ?? 1);
            using var hash = ResumableHash.Create(digest.Algorithm);
            // Read up to the inline threshold into memory first: a small blob then goes straight into RocksDB,
            // written once, instead of to a temporary file and again into RocksDB (loadtest/allinone).
            var head = new byte[InlineThreshold + 1];
            var headLength = 0;
            int n;
            while (headLength < head.Length && (n = await content.ReadAsync(head.AsMemory(headLength), cancellationToken)) > 0)
            {
                headLength += n;
            }
            hash.Append(head.AsSpan(0, headLength));
            long size = headLength;
            var inline = headLength <= InlineThreshold;
            if (!inline)
            {
                await using var file = BlobFileWriter.Create(tmp, DirectWrites);
                await file.WriteAsync(head.AsMemory(0, headLength));
                size += await file.CopyFromAsync(content, hash, cancellationToken);
                await file.CompleteAsync();
            }
            if (expectedLength is { } expected && expected != size)
            {
                throw new RegistryException(ErrorCode.SizeInvalid, $"expected {expected} bytes, received {size}");
            }
            if (hash.FinishDigest() != digest)
            {
                throw new RegistryException(ErrorCode.DigestInvalid);
            }
            EnsureRoomFor(digest, size);
            if (inline)
            {
                CommitInline(digest, head.AsSpan(0, headLength).ToArray());
            }
            else
            {
                Commit(tmp, digest, size);
            }
            return size;
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            throw new RegistryException(ErrorCode.Unavailable, "storage is full");
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    public async Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken)
    {
        // The bytes an upload would add once committed: refused early, as a full disk would refuse them.
        EnsureRoom(offset + 1);
        var gate = _uploadLocks.GetOrAdd(uploadId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            await using var file = BlobFileWriter.OpenOrCreate(UploadPath(uploadId), DirectWrites);
            if (file.Length < offset)
            {
                throw new RegistryException(ErrorCode.BlobUploadInvalid, "upload bytes before the acknowledged offset are missing on this node");
            }
            // Anything beyond the acknowledged offset was never acknowledged: cut it off (DESIGN principle 8).
            file.StartAt(offset);
            await file.CopyFromAsync(content, null, cancellationToken);
            return await file.CompleteAsync();
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            throw new RegistryException(ErrorCode.Unavailable, "storage is full");
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken)
    {
        var gate = _uploadLocks.GetOrAdd(uploadId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var part = UploadPath(uploadId);
            if (!File.Exists(part))
            {
                if (Index(digest)?.Size == length)
                {
                    return; // Committed before, by a request whose answer was lost: the retry succeeds.
                }
                if (length == 0)
                {
                    await File.WriteAllBytesAsync(part, [], cancellationToken);
                }
                else
                {
                    throw new RegistryException(ErrorCode.BlobUploadUnknown, "upload bytes are missing on this node");
                }
            }
            using (var fs = new FileStream(part, FileMode.Open, FileAccess.Write))
            {
                if (fs.Length < length)
                {
                    throw new RegistryException(ErrorCode.BlobUploadInvalid, "upload is shorter than its acknowledged offset");
                }
                if (fs.Length > length)
                {
                    fs.SetLength(length);
                    fs.Flush(flushToDisk: true);
                }
            }
            EnsureRoomFor(digest, length);
            Commit(part, digest, length);
        }
        finally
        {
            gate.Release();
            _uploadLocks.TryRemove(uploadId, out _);
        }
    }

    public Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken)
    {
        File.Delete(UploadPath(uploadId));
        _uploadLocks.TryRemove(uploadId, out _);
        return Task.CompletedTask;
    }

    /// <summary>Makes a synced file the blob: inline into RocksDB when small, else rename into place; then index it.</summary>
    private void Commit(string file, Digest digest, long size)
    {
        lock (CommitLock(digest))
        {
            CommitLocked(file, digest, size);
        }
    }

    private void CommitLocked(string file, Digest digest, long size)
    {
        if (Index(digest) is not null)
        {
            File.Delete(file); // Stored once: the same layer pushed again (or to another repository) is deduplicated.
            return;
        }
        var batch = new RecordBatch();
        if (size <= InlineThreshold)
        {
            CommitInline(digest, File.ReadAllBytes(file));
            File.Delete(file);
            return;
        }
        var target = BlobPath(digest);
        var dir = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(dir);
        File.Move(file, target, overwrite: true);
        Durable.SyncDirectory(dir);
        batch.Put(Keys.BlobIndex(digest), JsonSerializer.SerializeToUtf8Bytes(new BlobIndexEntry(1, size, false)));
        _records.Write(batch);
        Held(size);
    }

    private void CommitInline(Digest digest, byte[] bytes)
    {
        lock (CommitLock(digest))
        {
            if (Index(digest) is not null)
            {
                return;
            }
            _records.Write(new RecordBatch()
            .Put(Keys.BlobInline(digest), bytes)
            .Put(Keys.BlobIndex(digest), JsonSerializer.SerializeToUtf8Bytes(new BlobIndexEntry(1, bytes.Length, true))));
            Held(bytes.Length);
        }
    }

    private static bool IsDiskFull(IOException e) =>
        e.HResult == 28 || e.HResult == unchecked((int)0x80070070) || e.Message.Contains("No space left", StringComparison.Ordinal);
}
