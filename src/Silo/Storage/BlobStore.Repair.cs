using Wharf.Contracts.Oci;

namespace Wharf.Silo.Storage;

/// <summary>What repair needs of the store beyond the byte service: drop a copy that has gone home.</summary>
public sealed partial class BlobStore
{
    private readonly object[] _commitLocks = [.. Enumerable.Range(0, 64).Select(_ => new object())];

    /// <summary>Commits and drops of one digest never interleave (a drop must not remove a file a commit just indexed).</summary>
    private object CommitLock(Digest digest) => _commitLocks[Convert.ToInt32(digest.Hex[..2], 16) % _commitLocks.Length];

    /// <summary>
    /// Removes this node's copy of a blob (repair calls it only once every owner of the digest holds a verified
    /// copy): the index entry first, so no reader opens it from then on, then the bytes. Readers that already opened
    /// the file keep reading it. Returns the bytes freed, or null when the blob was not here.
    /// </summary>
    public long? Drop(Digest digest)
    {
        lock (CommitLock(digest))
        {
            var entry = Index(digest);
            if (entry is null)
            {
                return null;
            }
            if (entry.Inline)
            {
                _records.Write(new RecordBatch().Delete(Keys.BlobIndex(digest)).Delete(Keys.BlobInline(digest)));
            }
            else
            {
                _records.Write(new RecordBatch().Delete(Keys.BlobIndex(digest)));
                File.Delete(BlobPath(digest));
            }
            Held(-entry.Size);
            return entry.Size;
        }
    }

    /// <summary>Whether this node indexes the digest (without opening it).</summary>
    public bool Holds(Digest digest) => Index(digest) is not null;
}
