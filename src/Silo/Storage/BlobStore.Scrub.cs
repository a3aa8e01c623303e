using System.Text.Json;
using Wharf.Contracts.Oci;

namespace Wharf.Silo.Storage;

/// <summary>One blob this node stores, as its index says: what the scrubber walks.</summary>
public readonly record struct StoredBlob(Digest Digest, long Size, bool Inline);

/// <summary>What the scrubber needs of the store: walk the index, replace a corrupt copy, move one aside.</summary>
public sealed partial class BlobStore
{
    /// <summary>Up to <paramref name="limit"/> indexed blobs after <paramref name="after"/>, in digest order.</summary>
    public List<StoredBlob> ListBlobs(Digest? after, int limit)
    {
        var page = _records.Scan("bl/", after?.ToString(), limit);
        var result = new List<StoredBlob>(page.Count);
        foreach (var (key, value) in page)
        {
            if (Digest.TryParse(key, out var digest) && JsonSerializer.Deserialize<BlobIndexEntry>(value) is { } entry)
            {
                result.Add(new StoredBlob(digest.Value, entry.Size, entry.Inline));
            }
        }
        return result;
    }

    /// <summary>
    /// Replaces this node's copy of a blob with <paramref name="content"/>, only if those bytes hash to the digest
    /// and have the indexed size (else <see cref="ErrorCode.DigestInvalid"/> and the copy is left as it was): a file
    /// is written to a temporary, synced, verified, renamed over the old one and its directory synced; an inline
    /// value is rewritten in one synced batch. A blob not indexed here is simply written.
    /// </summary>
    public async Task<long> RepairAsync(Digest digest, Stream content, CancellationToken cancellationToken)
    {
        var entry = Index(digest);
        if (entry is null)
        {
            return await WriteBlobAsync(digest, content, null, cancellationToken);
        }
        using var hash = ResumableHash.Create(digest.Algorithm);
        if (entry.Inline)
        {
            var bytes = new byte[InlineThreshold + 1];
            var length = 0;
            int n;
            while (length < bytes.Length && (n = await content.ReadAsync(bytes.AsMemory(length), cancellationToken)) > 0)
            {
                length += n;
            }
            hash.Append(bytes.AsSpan(0, length));
            if (length != entry.Size || hash.FinishDigest() != digest)
            {
                throw new RegistryException(ErrorCode.DigestInvalid, "repair bytes do not match the digest");
            }
            _records.Write(new RecordBatch().Put(Keys.BlobInline(digest), bytes.AsSpan(0, length).ToArray()));
            return length;
        }
        var tmp = Path.Combine(_tmpRoot, Guid.NewGuid().ToString("N"));
        try
        {
            long size;
            await using (var file = BlobFileWriter.Create(tmp, DirectWrites))
            {
                size = await file.CopyFromAsync(content, hash, cancellationToken);
                await file.CompleteAsync();
            }
            if (size != entry.Size || hash.FinishDigest() != digest)
            {
                throw new RegistryException(ErrorCode.DigestInvalid, "repair bytes do not match the digest");
            }
            var target = BlobPath(digest);
            var dir = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(dir);
            // Readers that opened the corrupt file keep its inode; every later open gets the verified bytes.
            File.Move(tmp, target, overwrite: true);
            Durable.SyncDirectory(dir);
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

    /// <summary>
    /// Takes a copy known to be corrupt out of service when no good copy could be fetched: the index entry goes
    /// (so this node answers "not here" and readers turn to another holder, never getting wrong bytes from it) and
    /// the bytes are kept in <c>corrupt/</c> for an operator. Returns the path they were kept at.
    /// </summary>
    public string? Quarantine(Digest digest)
    {
        var entry = Index(digest);
        if (entry is null)
        {
            return null;
        }
        Directory.CreateDirectory(_corruptRoot);
        var kept = Path.Combine(_corruptRoot, $"{digest.Algorithm}-{digest.Hex}-{DateTime.UtcNow:yyyyMMddTHHmmss}");
        if (entry.Inline)
        {
            var bytes = _records.Get(Keys.BlobInline(digest)) ?? [];
            using (var fs = new FileStream(kept, FileMode.Create, FileAccess.Write))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            Durable.SyncDirectory(_corruptRoot);
            _records.Write(new RecordBatch().Delete(Keys.BlobIndex(digest)).Delete(Keys.BlobInline(digest)));
            Held(-entry.Size);
            return kept;
        }
        // Index entry first: from then on no reader opens the file; a crash before the move leaves an unindexed file
        // that a later write of the same digest replaces.
        _records.Write(new RecordBatch().Delete(Keys.BlobIndex(digest)));
        Held(-entry.Size);
        var path = BlobPath(digest);
        if (File.Exists(path))
        {
            File.Move(path, kept, overwrite: true);
            Durable.SyncDirectory(_corruptRoot);
            Durable.SyncDirectory(Path.GetDirectoryName(path)!);
        }
        return kept;
    }
}
