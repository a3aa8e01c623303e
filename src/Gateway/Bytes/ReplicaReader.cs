using System.Collections.Concurrent;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// Reads a blob from whichever node has it (DESIGN principle 4): the holders a link names, then the digest's owners,
/// then the rest of the shard's ranking (where a hinted copy lands), healthy nodes first. Among healthy holders each
/// gateway starts at its own choice (a hash of a per-process salt and the digest), so R holders share the reads of
/// a popular layer across gateways while one gateway keeps reading a digest from the same node (its page cache).
/// A stream that breaks mid-way resumes on another holder at the same offset (<see cref="ResumingReadStream"/>).
/// Concurrent reads of one small object (manifests, configs: up to <see cref="CoalesceLimit"/>) through this gateway
/// share one fetch; large blobs are streamed per reader, spread over the holders, never buffered whole.
/// </summary>
public sealed class ReplicaReader(IByteRouter router, NodeHealth health)
{
    /// <summary>Below the large-object heap (85 KB) and above every manifest or config seen in practice.</summary>
    public const long CoalesceLimit = 64 * 1024;

    internal IByteRouter Router => router;

    internal NodeHealth Health => health;

    private readonly uint _salt = (uint)Random.Shared.Next();
    private readonly ConcurrentDictionary<(Digest Digest, long Offset, long Length), Task<byte[]?>> _inflight = new();

    /// <summary>Opens <paramref name="length"/> bytes from <paramref name="offset"/>; null when no node has them.</summary>
    public async Task<Stream?> OpenAsync(Digest digest, long offset, long length, IReadOnlyList<string> holders, CancellationToken ct)
    {
        if (length > CoalesceLimit)
        {
            return await OpenStreamAsync(digest, offset, length, holders, ct);
        }
        // Keyed by content, not by holders: any node with the digest has the same bytes, and the caller checked the
        // repository's link before asking (a waiter never sees a blob its repository does not link).
        var key = (digest, offset, length);
        Task<byte[]?> fetch;
        while (!_inflight.TryGetValue(key, out fetch!))
        {
            var started = new TaskCompletionSource<byte[]?>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_inflight.TryAdd(key, started.Task))
            {
                // The fetch belongs to every waiter, so no one caller's hang-up cancels it.
                _ = FetchSharedAsync(key, holders, started);
                fetch = started.Task;
                break;
            }
        }
        var bytes = await fetch.WaitAsync(ct);
        return bytes is null ? null : new MemoryStream(bytes, writable: false);
    }

    private async Task FetchSharedAsync((Digest Digest, long Offset, long Length) key, IReadOnlyList<string> holders, TaskCompletionSource<byte[]?> done)
    {
        try
        {
            await using var stream = await OpenStreamAsync(key.Digest, key.Offset, key.Length, holders, CancellationToken.None);
            if (stream is null)
            {
                done.SetResult(null);
                return;
            }
            var bytes = new byte[key.Length];
            await stream.ReadExactlyAsync(bytes);
            done.SetResult(bytes);
        }
        catch (Exception e)
        {
            done.SetException(e);
        }
        finally
        {
            _inflight.TryRemove(key, out _);
        }
    }

    private async Task<Stream?> OpenStreamAsync(Digest digest, long offset, long length, IReadOnlyList<string> holders, CancellationToken ct)
    {
        var source = new ReplicaSource(this, digest, holders);
        var opened = await source.OpenNextAsync(offset, length, ct);
        if (opened is null || (router.Replicas <= 1 && router.RankingOfDigest(digest).Count <= 1))
        {
            // One node (the all-in-one): nowhere to resume, so the store's stream is served as it is — no copy
            // through the resuming stream's buffer on every blob GET.
            return opened;
        }
        return new ResumingReadStream(source, opened, offset, length);
    }

    /// <summary>How long a node may take to start a read before the next holder is asked.</summary>
    public static readonly TimeSpan FirstByteTimeout = TimeSpan.FromSeconds(3);

    /// <summary>How long a read may wait for the next bytes before it resumes on another holder.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The nodes one read may try, in order, each at most once.</summary>
    internal sealed class ReplicaSource(ReplicaReader reader, Digest digest, IReadOnlyList<string> holders)
    {
        private List<string>? _order;
        private int _next;
        private bool _extended;
        private RegistryException? _unavailable;

        public string? Current { get; private set; }

        /// <summary>Opens the range on the next node that has it; null when none has it, UNAVAILABLE when one could not be asked.</summary>
        public async Task<Stream?> OpenNextAsync(long offset, long length, CancellationToken ct)
        {
            _order ??= reader.Order(digest, holders);
            while (true)
            {
                if (_next == _order.Count)
                {
                    if (_extended)
                    {
                        return _unavailable is null ? null : throw _unavailable;
                    }
                    // A hinted copy the caller did not know about (a manifest body) lies further down the ranking.
                    _extended = true;
                    _order.AddRange(reader.Router.RankingOfDigest(digest).Where(n => !_order.Contains(n)).Take(reader.Router.Replicas).ToList());
                    continue;
                }
                var node = _order[_next++];
                // A node that does not start answering in time (a paused process, a hung disk) is passed over.
                using var firstByte = CancellationTokenSource.CreateLinkedTokenSource(ct);
                firstByte.CancelAfter(FirstByteTimeout);
                try
                {
                    var stream = await reader.Router.Node(node).OpenReadAsync(digest, offset, length, firstByte.Token);
                    firstByte.CancelAfter(Timeout.InfiniteTimeSpan);
                    reader.Health.MarkReachable(node);
                    if (stream is not null)
                    {
                        Current = node;
                        return stream;
                    }
                }
                catch (RegistryException e) when (e.Code == ErrorCode.Unavailable)
                {
                    reader.Health.MarkUnreachable(node);
                    _unavailable ??= e;
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    reader.Health.MarkUnreachable(node);
                    _unavailable ??= new RegistryException(ErrorCode.Unavailable, $"storage node {node} did not answer within {FirstByteTimeout.TotalSeconds:0} s");
                }
            }
        }

        public void Failed(string node) => reader.Health.MarkUnreachable(node);
    }

    /// <summary>
    /// The link's holders (or, without them, the digest's owners) with the healthy ones first, starting at this
    /// gateway's choice for the digest; then the other owners; nodes the health tracker avoids or the view marks
    /// down come last, still tried before a read gives up.
    /// </summary>
    internal List<string> Order(Digest digest, IReadOnlyList<string> holders)
    {
        var owners = router.OwnersOfDigest(digest);
        var primary = new List<string>(Math.Max(holders.Count, owners.Count));
        foreach (var n in holders.Count > 0 ? holders : owners)
        {
            if (!primary.Contains(n))
            {
                primary.Add(n);
            }
        }
        if (primary.Count == 1 && owners.All(primary.Contains))
        {
            return primary; // One node (the all-in-one): nothing to choose.
        }
        var healthy = primary.Where(n => health.ServesReads(router, n)).ToList();
        var ordered = new List<string>(primary.Count + owners.Count);
        if (healthy.Count > 0)
        {
            var start = (int)((uint)HashCode.Combine(_salt, digest.Hex) % (uint)healthy.Count);
            for (var i = 0; i < healthy.Count; i++)
            {
                ordered.Add(healthy[(start + i) % healthy.Count]);
            }
        }
        ordered.AddRange(owners.Where(n => !primary.Contains(n) && health.ServesReads(router, n)));
        ordered.AddRange(primary.Concat(owners).Where(n => !ordered.Contains(n)).Distinct(StringComparer.Ordinal).ToList());
        return ordered;
    }
}
