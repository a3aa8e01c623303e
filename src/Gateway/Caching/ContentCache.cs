using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Caching;

/// <summary>
/// Content by digest (manifest bodies, blobs), least recently used first out, bounded by bytes. Content never changes
/// (its digest is its name, DESIGN principle 2), so it needs no lease: whether a repository still holds it is the
/// leased resolution's or the blob link's business, not this cache's. Concurrent misses of one digest share one
/// fetch (principle 4).
/// </summary>
public sealed class ContentCache(long capacityBytes)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Digest, LinkedListNode<(Digest Digest, byte[] Body)>> _index = [];
    private readonly LinkedList<(Digest Digest, byte[] Body)> _order = new();
    private readonly Dictionary<Digest, Task<byte[]?>> _fetching = [];
    private long _size;

    public long Capacity { get; } = capacityBytes;

    /// <summary>Bytes held now.</summary>
    public long Size
    {
        get
        {
            lock (_lock)
            {
                return _size;
            }
        }
    }

    /// <summary>Whether a fetch of <paramref name="digest"/> is running (a miss now would join it).</summary>
    public bool IsFetching(Digest digest)
    {
        lock (_lock)
        {
            return _fetching.ContainsKey(digest);
        }
    }

    public bool TryGet(Digest digest, out byte[] body)
    {
        lock (_lock)
        {
            if (_index.TryGetValue(digest, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                body = node.Value.Body;
                return true;
            }
        }
        body = [];
        return false;
    }

    /// <summary>
    /// What keeping <paramref name="bytes"/> more would cost: null when they fit without evicting anything, else the
    /// highest <paramref name="score"/> among the least recently used entries that would make room for them.
    /// </summary>
    public int? EvictionScore(long bytes, Func<Digest, int> score)
    {
        lock (_lock)
        {
            var free = Capacity - _size;
            if (bytes <= free)
            {
                return null;
            }
            var max = 0;
            for (var node = _order.Last; node is not null && free < bytes; node = node.Previous)
            {
                max = Math.Max(max, score(node.Value.Digest));
                free += node.Value.Body.Length;
            }
            return max;
        }
    }

    /// <summary>Keeps a body; one larger than an eighth of the capacity is not kept (it would flush the rest).</summary>
    public void Add(Digest digest, byte[] body)
    {
        if (body.Length > Capacity / 8)
        {
            return;
        }
        lock (_lock)
        {
            if (_index.ContainsKey(digest))
            {
                return;
            }
            _index[digest] = _order.AddFirst((digest, body));
            _size += body.Length;
            while (_size > Capacity && _order.Last is { } last)
            {
                _order.RemoveLast();
                _index.Remove(last.Value.Digest);
                _size -= last.Value.Body.Length;
            }
        }
    }

    /// <summary>
    /// The body from the cache, or from <paramref name="fetch"/> (null: not available), which is then kept. Callers
    /// missing the same digest at once share one fetch, so it must not depend on one caller's cancellation; a failed
    /// fetch is not remembered.
    /// </summary>
    public Task<byte[]?> GetOrFetchAsync(Digest digest, Func<Task<byte[]?>> fetch, out bool hit)
    {
        if (TryGet(digest, out var cached))
        {
            hit = true;
            return Task.FromResult<byte[]?>(cached);
        }
        hit = false;
        TaskCompletionSource<byte[]?> mine;
        lock (_lock)
        {
            if (_fetching.TryGetValue(digest, out var running))
            {
                return running;
            }
            mine = new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously);
            _fetching[digest] = mine.Task;
        }
        _ = FetchAsync(digest, fetch, mine);
        return mine.Task;
    }

    private async Task FetchAsync(Digest digest, Func<Task<byte[]?>> fetch, TaskCompletionSource<byte[]?> result)
    {
        try
        {
            var body = await fetch();
            if (body is not null)
            {
                Add(digest, body);
            }
            result.SetResult(body);
        }
        catch (Exception e)
        {
            result.SetException(e);
        }
        finally
        {
            lock (_lock)
            {
                _fetching.Remove(digest);
            }
        }
    }
}
