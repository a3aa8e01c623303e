using Microsoft.Extensions.Logging;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// Writes bytes to R nodes and acknowledges after W (DESIGN principles 4 and 8). A body is read once and streamed to
/// every target in parallel (<see cref="StreamFanOut"/>); with a single target it goes straight to it, as the
/// all-in-one always did. Blobs whose digest is known take a hinted copy on the next live node of the shard's
/// ranking in place of an owner known to be down; upload bytes never do. Fewer than W targets, or fewer than W that
/// synced, is 503 UNAVAILABLE; R is never lowered silently (a write held by fewer than R nodes is logged).
/// </summary>
public sealed class ReplicaWriter(IByteRouter router, NodeHealth health, ILogger<ReplicaWriter> logger, TimeSpan? stallTimeout = null)
{
    private readonly TimeSpan _stallTimeout = stallTimeout ?? StreamFanOut.DefaultStallTimeout;

    /// <summary>Stores a blob whose digest is known; returns its size and the nodes that now hold it.</summary>
    public async Task<(long Size, string[] Holders)> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken ct)
    {
        var quorum = router.WriteQuorum;
        var targets = BlobTargets(digest);
        if (targets.Count < quorum)
        {
            throw new RegistryException(ErrorCode.Unavailable,
                $"only {targets.Count} storage node(s) can take {digest} now; {quorum} must hold it before it is acknowledged");
        }
        if (targets.Count == 1)
        {
            var size = await CallAsync(targets[0], n => n.WriteBlobAsync(digest, content, expectedLength, ct), ct);
            return (size, [targets[0]]);
        }
        var run = await StreamFanOut.RunAsync(content, targets.Count,
            (i, stream, t) => CallAsync(targets[i], n => n.WriteBlobAsync(digest, stream, expectedLength, t), ct), _stallTimeout, ct, quorum);
        var holders = Succeeded(targets, run);
        if (holders.Count >= quorum)
        {
            WarnIfShort(digest.ToString(), holders.Count, run);
            return (run.Outcomes.First(o => o.Succeeded).Result, [.. holders]);
        }
        // The client's fault (a wrong digest or length) is answered as such, even though it failed every target.
        throw ClientError(run) ?? Unavailable($"{holders.Count} of {targets.Count} storage nodes stored {digest}; {quorum} needed", run);
    }

    /// <summary>
    /// Appends a chunk at the acknowledged offset to every upload owner in <paramref name="owners"/> that can take
    /// it. Returns the new length and the owners that now have every byte of the upload (an owner that missed this
    /// chunk leaves the upload). Throws UNAVAILABLE when fewer than W have it: nothing is acknowledged then.
    /// </summary>
    public async Task<(long Length, string[] Owners)> AppendUploadAsync(string uploadId, IReadOnlyList<string> owners, long offset, Stream content, CancellationToken ct)
    {
        var quorum = router.WriteQuorum;
        if (owners.Count == 1)
        {
            // One owner (the all-in-one, R = 1): its answer, or its error, as before replication.
            return (await CallAsync(owners[0], n => n.AppendUploadAsync(uploadId, offset, content, ct), ct), [owners[0]]);
        }
        // No hints for upload bytes: an owner that cannot take this chunk now misses it and leaves the upload.
        var targets = owners.Where(o => health.TakesWrites(router, o)).ToList();
        TryAvoidedIfShort(targets, owners, quorum);
        if (targets.Count < quorum)
        {
            throw new RegistryException(ErrorCode.Unavailable,
                $"only {targets.Count} of the upload's {owners.Count} storage nodes can take bytes now; {quorum} needed");
        }
        var run = await StreamFanOut.RunAsync(content, targets.Count,
            (i, stream, t) => CallAsync(targets[i], n => n.AppendUploadAsync(uploadId, offset, stream, t), ct), _stallTimeout, ct, quorum);
        var length = offset + run.BytesRead;
        var remaining = new List<string>(targets.Count);
        for (var i = 0; i < targets.Count; i++)
        {
            // A node that answered another length than the bytes sent lost some: it leaves the upload too.
            if (run.Outcomes[i].Succeeded && run.Outcomes[i].Result == length)
            {
                remaining.Add(targets[i]);
            }
        }
        if (run.SourceError is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(run.SourceError);
        }
        if (remaining.Count < quorum)
        {
            throw Unavailable($"{remaining.Count} of the upload's {targets.Count} reachable storage nodes synced the chunk; {quorum} needed", run);
        }
        WarnIfShort(uploadId, remaining.Count, run);
        return (length, [.. remaining]);
    }

    /// <summary>Commits an upload on every owner in parallel; returns the owners that now hold the blob (at least W).</summary>
    public async Task<string[]> CommitUploadAsync(string uploadId, IReadOnlyList<string> owners, Digest digest, long length, CancellationToken ct)
    {
        if (owners.Count == 1)
        {
            await CallAsync(owners[0], async n => { await n.CommitUploadAsync(uploadId, digest, length, ct); return 0; }, ct);
            return [owners[0]];
        }
        var quorum = router.WriteQuorum;
        var targets = owners.Where(o => !health.IsAvoided(o)).ToList();
        var outcomes = await CommitOnAsync(targets, uploadId, digest, length, quorum, ct);
        var holders = targets.Where((_, i) => outcomes[i] is null).ToArray();
        if (holders.Length >= quorum)
        {
            if (holders.Length < owners.Count)
            {
                logger.LogWarning("Upload {UploadId} committed as {Digest} on {Held} of {Owners} owners", uploadId, digest, holders.Length, owners.Count);
            }
            return holders;
        }
        ct.ThrowIfCancellationRequested();
        throw new RegistryException(ErrorCode.Unavailable,
            $"{holders.Length} of the upload's {owners.Count} storage nodes committed it; {quorum} needed" + Reasons(outcomes.OfType<Exception>()));
    }

    /// <summary>
    /// Commits on every target at once: once W answered, the others get <see cref="StreamFanOut.TailGrace"/> and are
    /// then cancelled, and none may take longer than the stall timeout, so a paused node never holds the answer.
    /// </summary>
    private async Task<Exception?[]> CommitOnAsync(List<string> targets, string uploadId, Digest digest, long length, int quorum, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cancels = targets.Select(_ => CancellationTokenSource.CreateLinkedTokenSource(ct)).ToArray();
        var tasks = targets.Select(async (o, i) =>
        {
            try
            {
                await CallAsync(o, async n => { await n.CommitUploadAsync(uploadId, digest, length, cancels[i].Token); return 0; }, ct);
                return (Exception?)null;
            }
            catch (Exception e)
            {
                return e;
            }
        }).ToArray();
        await StreamFanOut.AwaitQuorumAsync(tasks, cancels, quorum, clock, _stallTimeout, ct, good: e => e is null);
        var outcomes = tasks.Select(t => t.IsCompletedSuccessfully ? t.Result : new OperationCanceledException("the storage node did not answer")).ToArray();
        foreach (var c in cancels)
        {
            c.Dispose();
        }
        return outcomes;
    }

    /// <summary>Removes an upload's part file from every node that may hold one; best effort (the janitor sweeps the rest).</summary>
    public async Task DeleteUploadAsync(string uploadId, IReadOnlyList<string> owners)
    {
        await Task.WhenAll(owners.Select(async o =>
        {
            try
            {
                // Bounded: a node that hangs must not hold the client's answer (the janitor removes what is left).
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await router.Node(o).DeleteUploadAsync(uploadId, timeout.Token);
            }
            catch (Exception e) when (e is RegistryException or IOException or Grpc.Core.RpcException or OperationCanceledException)
            {
                logger.LogDebug("Upload {UploadId}: part file on {Node} not removed: {Message}", uploadId, o, e.Message);
            }
        }));
    }

    /// <summary>The digest's owners, each one known to be down replaced by the next live node of the ranking (a hint).</summary>
    public List<string> BlobTargets(Digest digest)
    {
        var owners = router.OwnersOfDigest(digest);
        var targets = new List<string>(owners.Count);
        var missing = 0;
        foreach (var o in owners)
        {
            if (health.TakesWrites(router, o))
            {
                targets.Add(o);
            }
            else
            {
                missing++;
            }
        }
        if (missing > 0)
        {
            foreach (var n in router.RankingOfDigest(digest))
            {
                if (missing == 0)
                {
                    break;
                }
                if (!owners.Contains(n) && !targets.Contains(n) && !health.IsAvoided(n))
                {
                    targets.Add(n);
                    missing--;
                }
            }
        }
        TryAvoidedIfShort(targets, owners, router.WriteQuorum);
        return targets;
    }

    /// <summary>
    /// Avoiding a node is a preference, not a verdict: when W cannot be reached without them, owners that recently
    /// failed (but that the view still calls active) are tried again rather than refusing outright. So the
    /// all-in-one's one node is always asked.
    /// </summary>
    private void TryAvoidedIfShort(List<string> targets, IReadOnlyList<string> owners, int quorum)
    {
        if (targets.Count >= quorum)
        {
            return;
        }
        foreach (var o in owners)
        {
            if (!targets.Contains(o) && router.StateOf(o) is Contracts.Placement.NodeState.Active)
            {
                targets.Add(o);
            }
        }
    }

    /// <summary>Calls a node, and tells the health tracker whether it answered.</summary>
    private async Task<T> CallAsync<T>(string node, Func<IByteService, Task<T>> call, CancellationToken request)
    {
        try
        {
            var result = await call(router.Node(node));
            health.MarkReachable(node);
            return result;
        }
        catch (Exception e) when (!request.IsCancellationRequested && NodeHealth.IsUnreachable(e))
        {
            health.MarkUnreachable(node);
            throw;
        }
    }

    private static List<string> Succeeded<T>(IReadOnlyList<string> targets, StreamFanOut.Result<T> run)
    {
        var holders = new List<string>(targets.Count);
        for (var i = 0; i < targets.Count; i++)
        {
            if (run.Outcomes[i].Succeeded)
            {
                holders.Add(targets[i]);
            }
        }
        return holders;
    }

    /// <summary>The client's own failure, if that is what happened: its body broke, or every node refused its bytes.</summary>
    private static Exception? ClientError<T>(StreamFanOut.Result<T> run)
    {
        if (run.SourceError is not null)
        {
            return run.SourceError;
        }
        return run.Outcomes
            .Select(o => o.Error)
            .OfType<RegistryException>()
            .FirstOrDefault(e => e.Code != ErrorCode.Unavailable && e.Code != ErrorCode.Unknown);
    }

    private static RegistryException Unavailable<T>(string message, StreamFanOut.Result<T> run) =>
        new(ErrorCode.Unavailable, message + Reasons(run.Outcomes.Select(o => o.Error).OfType<Exception>()));

    private static string Reasons(IEnumerable<Exception> errors)
    {
        var text = string.Join("; ", errors.Select(e => e is RegistryException r ? r.Detail ?? r.Code.Message : e.Message).Distinct());
        return text.Length == 0 ? "" : " (" + text + ")";
    }

    private void WarnIfShort<T>(string key, int held, StreamFanOut.Result<T> run)
    {
        if (held < router.Replicas)
        {
            logger.LogWarning("{Key} is held by {Held} of {Replicas} nodes; repair must copy the rest{Reasons}",
                key, held, router.Replicas, Reasons(run.Outcomes.Select(o => o.Error).OfType<Exception>()));
        }
    }
}
