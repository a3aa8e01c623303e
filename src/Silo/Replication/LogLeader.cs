using System.Diagnostics;
using Google.Protobuf;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Protos.Records;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Replication;

/// <summary>One replica of a log as its leader reaches it: in-process for this node, gRPC for the others.</summary>
public interface IReplicaPeer
{
    string NodeId { get; }

    Task<PrepareReply> PrepareAsync(PrepareRequest request, CancellationToken cancellationToken);

    Task<AcceptReply> AcceptAsync(AcceptRequest request, CancellationToken cancellationToken);

    Task<FetchReply> FetchAsync(FetchRequest request, CancellationToken cancellationToken);

    Task<AcceptReply> ForgetAsync(ForgetRequest request, CancellationToken cancellationToken);
}

/// <summary>This node's replica, called in-process.</summary>
public sealed class LocalReplicaPeer(string nodeId, LogReplica replica) : IReplicaPeer
{
    public string NodeId => nodeId;

    public LogReplica Replica => replica;

    public Task<PrepareReply> PrepareAsync(PrepareRequest request, CancellationToken cancellationToken) => Task.FromResult(replica.Prepare(request));

    public Task<AcceptReply> AcceptAsync(AcceptRequest request, CancellationToken cancellationToken) => Task.FromResult(replica.Accept(request));

    public Task<FetchReply> FetchAsync(FetchRequest request, CancellationToken cancellationToken) => Task.FromResult(replica.Fetch(request));

    public Task<AcceptReply> ForgetAsync(ForgetRequest request, CancellationToken cancellationToken) => Task.FromResult(replica.Forget(request));
}

/// <summary>
/// <paramref name="Lease"/>: the leader's read lease (and a new leader's wait before its first change);
/// <paramref name="CallTimeout"/>: how long one owner may take to answer; <paramref name="RetryBackoff"/>: the base of
/// the randomized pause before a recovery retries with a higher ballot (so two activations do not duel in step).
/// </summary>
public sealed record LeaderTimings(TimeSpan Lease, TimeSpan CallTimeout, TimeSpan RetryBackoff)
{
    public static readonly LeaderTimings Default = new(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(50));
}

/// <summary>
/// The leader side of one log (DESIGN principle 5; docs/architecture.md "Repository logs"): a grain activation
/// recovers the log with a fresh ballot — W promises, then the tail re-proposed and committed — and then appends one
/// batch at a time, each acknowledged once W owners accepted it. A replica that promised a higher ballot refuses
/// everything from this one, so a stale activation cannot reach W: it is deposed, and says so.
/// Reads are served from this node's replica while the leader holds a read lease (renewed by a heartbeat round), and
/// a new leader makes no change until any previous leader's lease has run out.
/// </summary>
public sealed class LogLeader
{
    private const int CatchUpPage = 512;
    private const int MaxAttempts = 5;

    private readonly string _log;
    private readonly string _self;
    private readonly IReadOnlyList<IReplicaPeer> _peers;
    private readonly LocalReplicaPeer _local;
    private readonly int _writeQuorum;
    private readonly LeaderTimings _timings;
    private readonly Observability.LogMetrics? _metrics;
    private readonly SemaphoreSlim _appendLock = new(1, 1);
    private readonly object _renewGate = new();

    private Ballot _ballot = new();
    private long _last;
    private Ballot _lastBallot = new();
    private long _commitIndex;
    private long _leaseStart;
    private long _firstWriteAfter;
    private Task? _renewal;
    private volatile string? _failure;
    private long _outranked;

    private readonly long _viewEpoch;
    private readonly IReadOnlyList<(IReadOnlyCollection<string> Owners, int Quorum)> _quorums;
    private readonly bool _succeeding;

    /// <param name="viewEpoch">The placement view epoch the owners were chosen by; carried in every request.</param>
    /// <param name="quorums">
    /// The owner sets that must each answer with their quorum (joint quorums while owners move: the new owners with W,
    /// the old with theirs); null: one set, every peer, with <paramref name="writeQuorum"/>.
    /// </param>
    /// <param name="succeeding">
    /// This leader replaces one of the same activation that stops using its old leader now (owners moved): no earlier
    /// reader remains to be waited out.
    /// </param>
    public LogLeader(string log, string self, IReadOnlyList<IReplicaPeer> peers, int writeQuorum, LeaderTimings? timings = null, Observability.LogMetrics? metrics = null, long viewEpoch = 0,
        IReadOnlyList<(IReadOnlyCollection<string> Owners, int Quorum)>? quorums = null, bool succeeding = false)
    {
        _viewEpoch = viewEpoch;
        _quorums = quorums ?? [(peers.Select(p => p.NodeId).ToList(), writeQuorum)];
        _succeeding = succeeding;
        _metrics = metrics;
        _log = log;
        _self = self;
        _peers = peers;
        _local = peers.OfType<LocalReplicaPeer>().FirstOrDefault(p => p.NodeId == self)
            ?? throw new LogUnavailableException($"log {log}: this node ({self}) is not one of its owners ({string.Join(", ", peers.Select(p => p.NodeId))})");
        _writeQuorum = writeQuorum;
        _timings = timings ?? LeaderTimings.Default;
    }

    public string Log => _log;

    /// <summary>The placement view epoch this leader chose its owners by.</summary>
    public long ViewEpoch => _viewEpoch;

    /// <summary>The nodes this leader writes to.</summary>
    public IEnumerable<string> Owners => _quorums.SelectMany(q => q.Owners).Distinct(StringComparer.Ordinal);

    /// <summary>Whether this leader writes to joint quorums (owners were moving when it was made).</summary>
    public bool Joint => _quorums.Count > 1;

    /// <summary>An owner said this leader's view is outdated: a leader made from the current view replaces it.</summary>
    public bool StaleView { get; private set; }

    /// <summary>Whether <paramref name="good"/> holds W of every quorum set.</summary>
    private bool Satisfied(IEnumerable<IReplicaPeer> good)
    {
        var ids = good.Select(p => p.NodeId).ToHashSet(StringComparer.Ordinal);
        return _quorums.All(q => q.Owners.Count(ids.Contains) >= q.Quorum);
    }

    public Ballot Ballot => _ballot;

    /// <summary>Whether any leader held this log before this one (its promises said so).</summary>
    public bool HadPreviousLeader { get; private set; }

    /// <summary>
    /// Whether the log's last committed entry is a previous leader's <see cref="QuiesceAsync"/>: it stepped down
    /// cleanly after every reader it had was done, so this leader has nothing to wait out.
    /// </summary>
    public bool ResumedQuiesced { get; private set; }

    /// <summary>How long after this leader's promises a previous leader may still have served reads (zero with one owner).</summary>
    public TimeSpan PreviousLeaderReadLease => _peers.Count > 1 && HadPreviousLeader && !ResumedQuiesced ? _timings.Lease : TimeSpan.Zero;

    /// <summary>The key of the clean step-down marker, beside the log's own state.</summary>
    public static string QuiesceKey(string log) => $"lg/{log}\0q";

    /// <summary>The sequence number of the last committed entry.</summary>
    public long Committed => _commitIndex;

    /// <summary>Why this leader can no longer serve (deposed by a newer ballot, or lost its quorum); null while it leads.</summary>
    public string? Failure => _failure;

    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RecoverCoreAsync(cancellationToken);
            _metrics?.Recovery(ok: true);
        }
        catch (LogUnavailableException)
        {
            _metrics?.Recovery(ok: false);
            throw;
        }
    }

    private async Task RecoverCoreAsync(CancellationToken cancellationToken)
    {
        if (!Satisfied(_peers))
        {
            throw new LogUnavailableException($"log {_log}: {_peers.Count} owners in the placement view, fewer than the write quorum {_writeQuorum}");
        }
        var counter = (_local.Replica.State(_log).Promised?.Counter ?? 0) + 1;
        for (var attempt = 1; ; attempt++)
        {
            var ballot = new Ballot { Counter = counter, Node = _self };
            var replies = await QuorumAsync(
                (p, ct) => p.PrepareAsync(new PrepareRequest { Log = _log, Ballot = ballot, ViewEpoch = _viewEpoch }, ct),
                r => r.Ok,
                cancellationToken);
            if (replies.FirstOrDefault(r => r.Reply.StaleView) is { Peer: { } stale })
            {
                StaleView = true;
                throw new LogUnavailableException($"log {_log}: owner {stale.NodeId} knows a newer placement view than epoch {_viewEpoch}; a new activation follows it");
            }
            var promises = replies.Where(r => r.Reply.Ok).ToList();
            var prepared = Stopwatch.GetTimestamp();
            if (Satisfied(promises.Select(p => p.Peer)) && promises.Any(p => p.Peer == _local))
            {
                try
                {
                    await TakeOverAsync(ballot, promises, cancellationToken);
                }
                catch (LogUnavailableException) when (_outranked > 0 && attempt < MaxAttempts)
                {
                    // An owner had promised a higher ballot than the quorum that promised ours: try again above it.
                    counter = Math.Max(counter, _outranked) + 1;
                    _outranked = 0;
                    _failure = null;
                    continue;
                }
                _leaseStart = prepared;
                // Any earlier leader's last successful round was acknowledged before these promises were given, so its
                // read lease ends within one lease period from now: change nothing until then. A log no leader ever
                // held, or one with a single owner (whose only leader ran on this node), has no such reader.
                HadPreviousLeader = promises.Any(p => p.Reply.HadPromise);
                _firstWriteAfter = PreviousLeaderReadLease > TimeSpan.Zero && !_succeeding ? prepared + ToTicks(_timings.Lease) : 0;
                return;
            }
            var higher = replies.Where(r => !r.Reply.Ok).Select(r => r.Reply.Promised.Counter).DefaultIfEmpty(0).Max();
            if (attempt == MaxAttempts || higher == 0)
            {
                throw new LogUnavailableException(
                    $"log {_log}: {promises.Count} of {_peers.Count} owners promised ballot {Ballots.Format(ballot)}, {_writeQuorum} needed");
            }
            counter = Math.Max(counter, higher) + 1;
            if (_timings.RetryBackoff > TimeSpan.Zero)
            {
                await Task.Delay(_timings.RetryBackoff * (attempt + Random.Shared.NextDouble()), cancellationToken);
            }
        }
    }

    /// <summary>Catches this node's replica up to the most advanced promise, then re-proposes the tail under our ballot.</summary>
    private async Task TakeOverAsync(Ballot ballot, List<(IReplicaPeer Peer, PrepareReply Reply)> promises, CancellationToken ct)
    {
        var best = promises.MaxBy(p => p.Reply.Committed);
        var maxCommitted = best.Reply.Committed;
        var local = _local.Replica.State(_log);
        while (local.Committed < maxCommitted)
        {
            FetchReply fetched;
            try
            {
                fetched = await WithTimeout((p, c) => p.FetchAsync(new FetchRequest { Log = _log, From = local.Committed + 1, To = maxCommitted }, c), best.Peer, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                throw new LogUnavailableException($"log {_log}: could not fetch committed entries from owner {best.Peer.NodeId}: {e.Message}", e);
            }
            if (fetched.Entries.Count == 0)
            {
                throw new LogUnavailableException($"log {_log}: owner {best.Peer.NodeId} did not return committed entries after {local.Committed}");
            }
            var request = new AcceptRequest { Log = _log, Ballot = ballot, ViewEpoch = _viewEpoch, PrevSeq = local.Committed, PrevBallot = local.CommittedBallot ?? new Ballot(), CommitUpTo = maxCommitted };
            request.Entries.AddRange(fetched.Entries);
            var reply = _local.Replica.Accept(request);
            if (reply.Result != AcceptResult.Accepted || reply.Committed <= local.Committed)
            {
                throw new LogUnavailableException($"log {_log}: could not catch up this node's replica ({reply.Result})");
            }
            local = _local.Replica.State(_log);
        }

        // The tail: above the highest commit point, for each sequence number the entry accepted under the highest ballot.
        var tail = new List<Entry>();
        for (var seq = maxCommitted + 1; ; seq++)
        {
            Entry? chosen = null;
            foreach (var (_, reply) in promises)
            {
                foreach (var e in reply.Entries)
                {
                    if (e.Seq == seq && (chosen is null || Ballots.Compare(e.Ballot, chosen.Ballot) > 0))
                    {
                        chosen = e;
                    }
                }
            }
            if (chosen is null)
            {
                break;
            }
            tail.Add(new Entry { Seq = seq, Ballot = ballot, Ops = { chosen.Ops } });
        }

        _ballot = ballot;
        _last = maxCommitted;
        _lastBallot = local.CommittedBallot ?? new Ballot();
        _commitIndex = maxCommitted;
        var last = maxCommitted + tail.Count;
        // A log nobody ever wrote (a new upload, repository or shard): W promises already fence every older ballot
        // and there is nothing to re-propose or to catch anyone up to, so the round and the commit notice are skipped.
        var empty = last == 0;
        if (!empty && (!await ReplicateAsync(_last, _lastBallot, tail, maxCommitted, ct) || _failure is not null))
        {
            throw new LogUnavailableException(_failure ?? $"log {_log}: the recovered tail did not reach {_writeQuorum} owners");
        }
        if (tail.Count > 0)
        {
            _last = last;
            _lastBallot = ballot;
        }
        _commitIndex = last;
        ApplyLocally();
        if (!empty)
        {
            NotifyCommit();
        }
        if (tail.Count == 0 && last > 0)
        {
            // Quiesced only if the marker is the last entry AND no leader promised after the one that wrote it (one
            // that led without writing may have served reads and granted leases): W promises meet any W it had.
            var lastEntry = _local.Replica.Fetch(new FetchRequest { Log = _log, From = last, To = last }).Entries;
            ResumedQuiesced = lastEntry.Count == 1 && lastEntry[0].Ops.Count == 1 && lastEntry[0].Ops[0].Key == QuiesceKey(_log)
                && promises.All(p => p.Reply.PreviousPromised is null || Ballots.Compare(p.Reply.PreviousPromised, lastEntry[0].Ballot) <= 0);
        }
    }

    /// <summary>
    /// Steps down cleanly (a grain deactivating): appends a marker that tells the next leader no reader of this one
    /// remains, so it need not wait one lease before its first change. Call only when nothing this leader granted
    /// is still held; best effort (a leader that cannot append simply leaves the next one to wait).
    /// </summary>
    public async Task QuiesceAsync(CancellationToken cancellationToken = default)
    {
        // A leader that took over moments ago would first wait out its predecessor: not worth holding a shutdown for.
        if (_failure is not null || (_firstWriteAfter != 0 && Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _firstWriteAfter) > TimeSpan.FromSeconds(1)))
        {
            return;
        }
        try
        {
            await AppendAsync(new RecordBatch().Put(QuiesceKey(_log), [1]), cancellationToken);
        }
        catch (LogUnavailableException)
        {
        }
        _failure ??= $"log {_log}: stepped down";
    }

    /// <summary>Appends one batch; returns once W owners accepted it and this node applied it.</summary>
    public Task AppendAsync(RecordBatch batch, CancellationToken cancellationToken = default) => AppendAsync(batch, true, cancellationToken);

    /// <param name="notifyCommit">
    /// False when <see cref="ForgetAsync"/> follows at once: its request carries the commit, so a notice of its own would
    /// be a second round to every owner for nothing.
    /// </param>
    public async Task AppendAsync(RecordBatch batch, bool notifyCommit, CancellationToken cancellationToken = default)
    {
        if (batch.Count == 0)
        {
            return;
        }
        await _appendLock.WaitAsync(cancellationToken);
        try
        {
            ThrowIfFailed();
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _firstWriteAfter);
            if (_firstWriteAfter != 0 && wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken);
            }
            var entry = new Entry { Seq = _last + 1, Ballot = _ballot };
            foreach (var (key, value) in batch.Operations)
            {
                entry.Ops.Add(value is null ? new Op { Key = key, Delete = true } : new Op { Key = key, Value = ByteString.CopyFrom(value) });
            }
            var sent = Stopwatch.GetTimestamp();
            var acknowledged = await ReplicateAsync(_last, _lastBallot, [entry], _commitIndex, cancellationToken);
            _metrics?.Append(acknowledged, Stopwatch.GetElapsedTime(sent));
            if (!acknowledged)
            {
                // The entry may be on fewer than W owners: only a new leader's recovery can decide it.
                _failure ??= $"log {_log}: an append did not reach {_writeQuorum} owners";
                throw new LogUnavailableException(_failure);
            }
            // Accepted by W owners: committed, even if this leader was outranked meanwhile (then it leads no further).
            _last = entry.Seq;
            _lastBallot = _ballot;
            _commitIndex = entry.Seq;
            _leaseStart = sent;
            ApplyLocally();
            if (notifyCommit)
            {
                NotifyCommit();
            }
        }
        finally
        {
            _appendLock.Release();
        }
    }

    /// <summary>
    /// Drops a finished log on every owner that answers (an upload after it ended); best effort, an owner that misses
    /// it keeps a few small keys. This leader serves nothing afterwards.
    /// </summary>
    public async Task ForgetAsync(CancellationToken cancellationToken = default)
    {
        await _appendLock.WaitAsync(cancellationToken);
        try
        {
            _failure ??= $"log {_log}: forgotten";
            var request = new ForgetRequest { Log = _log, Ballot = _ballot, Commit = CommitNotice() };
            await Task.WhenAll(_peers.Select(async p =>
            {
                try
                {
                    await WithTimeout((peer, ct) => peer.ForgetAsync(request, ct), p, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                }
            }));
        }
        finally
        {
            _appendLock.Release();
        }
    }

    /// <summary>
    /// Returns once this node's replica may answer reads: the leader's read lease is valid (renewed by a heartbeat
    /// round when it ran out). A deposed leader throws, so a stale activation never serves an old state.
    /// </summary>
    public Task EnsureReadableAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfFailed();
        if (Stopwatch.GetElapsedTime(_leaseStart) < _timings.Lease)
        {
            return Task.CompletedTask;
        }
        lock (_renewGate)
        {
            if (_renewal is null || _renewal.IsCompleted)
            {
                _renewal = RenewAsync();
            }
            return _renewal;
        }
    }

    private async Task RenewAsync()
    {
        _metrics?.Heartbeat();
        var sent = Stopwatch.GetTimestamp();
        if (!await ReplicateAsync(_last, _lastBallot, [], _commitIndex, CancellationToken.None) || _failure is not null)
        {
            throw new LogUnavailableException(_failure ?? $"log {_log}: fewer than {_writeQuorum} owners confirmed this leader");
        }
        _leaseStart = sent;
    }

    private void ThrowIfFailed()
    {
        if (_failure is { } f)
        {
            throw new LogUnavailableException(f);
        }
    }

    private void ApplyLocally()
    {
        var reply = _local.Replica.Accept(new AcceptRequest
        {
            Log = _log, Ballot = _ballot, ViewEpoch = _viewEpoch, PrevSeq = _last, PrevBallot = _lastBallot, CommitUpTo = _commitIndex, NoSync = true,
        });
        if (reply.Result != AcceptResult.Accepted || reply.Committed < _commitIndex)
        {
            _failure ??= $"log {_log}: this node's replica did not apply entry {_commitIndex} ({reply.Result}, promised {Ballots.Format(reply.Promised)})";
            throw new LogUnavailableException(_failure);
        }
    }

    /// <summary>Tells the other owners how far the log is committed, so their records follow; nobody waits for it.</summary>
    private void NotifyCommit()
    {
        var request = CommitNotice();
        foreach (var peer in _peers)
        {
            if (peer != _local)
            {
                _ = WithTimeout((p, ct) => p.AcceptAsync(request, ct), peer, CancellationToken.None).ContinueWith(
                    t => _ = t.Exception, TaskScheduler.Default);
            }
        }
    }

    /// <summary>An Accept with no entries that moves an owner's commit point to this leader's (applied without a sync).</summary>
    private AcceptRequest CommitNotice() =>
        new() { Log = _log, Ballot = _ballot, ViewEpoch = _viewEpoch, PrevSeq = _last, PrevBallot = _lastBallot, CommitUpTo = _commitIndex, NoSync = true };

    /// <summary>Sends entries after (prevSeq, prevBallot) to every owner; true once W accepted. A refusal deposes this leader.</summary>
    private async Task<bool> ReplicateAsync(long prevSeq, Ballot prevBallot, IReadOnlyList<Entry> entries, long commitUpTo, CancellationToken ct)
    {
        var request = new AcceptRequest { Log = _log, Ballot = _ballot, ViewEpoch = _viewEpoch, PrevSeq = prevSeq, PrevBallot = prevBallot, CommitUpTo = commitUpTo };
        request.Entries.AddRange(entries);
        var replies = await QuorumAsync((p, c) => SendWithCatchUpAsync(p, request, c), r => r.Result == AcceptResult.Accepted, ct);
        foreach (var (peer, reply) in replies)
        {
            if (reply.Result == AcceptResult.StaleView)
            {
                StaleView = true;
                _failure ??= $"log {_log}: owner {peer.NodeId} knows a newer placement view than epoch {_viewEpoch}; a new activation follows it";
            }
            if (reply.Result == AcceptResult.Rejected && Ballots.Compare(reply.Promised, _ballot) > 0)
            {
                // Another activation is taking over: what W owners accepted under this ballot is still committed
                // (its recovery will find it), but this leader serves nothing more.
                _outranked = Math.Max(_outranked, reply.Promised.Counter);
                if (_failure is null)
                {
                    _metrics?.Deposed();
                }
                _failure ??= $"log {_log}: deposed — owner {peer.NodeId} promised ballot {Ballots.Format(reply.Promised)}, above this leader's {Ballots.Format(_ballot)}";
            }
        }
        return Satisfied(replies.Where(r => r.Reply.Result == AcceptResult.Accepted).Select(r => r.Peer));
    }

    /// <summary>Sends a request; an owner that lacks history is sent the entries it misses from this node's log first.</summary>
    private async Task<AcceptReply> SendWithCatchUpAsync(IReplicaPeer peer, AcceptRequest request, CancellationToken ct)
    {
        var reply = await peer.AcceptAsync(request, ct);
        // At or below the owner's commit point every log agrees, so the catch-up starts there with no ballot to check.
        var from = reply.Committed;
        var fromBallot = new Ballot();
        for (var round = 0; reply.Result == AcceptResult.Lagging && round < 64; round++)
        {
            var history = _local.Replica.Fetch(new FetchRequest { Log = _log, From = from + 1, To = Math.Min(request.PrevSeq, from + CatchUpPage) });
            var catchUp = new AcceptRequest { Log = _log, Ballot = request.Ballot, ViewEpoch = _viewEpoch, PrevSeq = from, PrevBallot = fromBallot, CommitUpTo = request.CommitUpTo };
            catchUp.Entries.AddRange(history.Entries);
            _metrics?.CaughtUp(history.Entries.Count);
            var complete = (history.Entries.Count == 0 ? from : history.Entries[^1].Seq) >= request.PrevSeq;
            if (complete)
            {
                catchUp.Entries.AddRange(request.Entries);
            }
            reply = await peer.AcceptAsync(catchUp, ct);
            if (reply.Result == AcceptResult.Accepted && !complete)
            {
                // One page of history went in; the next continues after it.
                from = history.Entries[^1].Seq;
                fromBallot = history.Entries[^1].Ballot;
                reply = new AcceptReply { Result = AcceptResult.Lagging, Committed = reply.Committed, Last = reply.Last, Promised = reply.Promised };
            }
            else if (reply.Result == AcceptResult.Lagging)
            {
                from = reply.Committed;
                fromBallot = new Ballot();
            }
        }
        return reply;
    }

    /// <summary>
    /// Calls every owner at once and returns as soon as <see cref="_writeQuorum"/> replies are good, or when every
    /// call ended; calls that fail or outlast the timeout count as no reply.
    /// </summary>
    private async Task<List<(IReplicaPeer Peer, T Reply)>> QuorumAsync<T>(
        Func<IReplicaPeer, CancellationToken, Task<T>> call, Func<T, bool> good, CancellationToken ct)
    {
        var replies = new List<(IReplicaPeer, T)>();
        var pending = _peers.Select(p => (Peer: p, Task: WithTimeout(call, p, ct))).ToList();
        var goodPeers = new List<IReplicaPeer>();
        var localDone = false;
        // This node's owner (in-process, so quick) is always heard: the leader reads from it and applies to it.
        while (pending.Count > 0 && (!Satisfied(goodPeers) || !localDone))
        {
            var done = await Task.WhenAny(pending.Select(p => p.Task));
            var index = pending.FindIndex(p => p.Task == done);
            var peer = pending[index].Peer;
            pending.RemoveAt(index);
            localDone |= peer == _local;
            if (done.IsCompletedSuccessfully)
            {
                replies.Add((peer, done.Result));
                if (good(done.Result))
                {
                    goodPeers.Add(peer);
                }
            }
        }
        foreach (var (_, task) in pending)
        {
            _ = task.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        }
        return replies;
    }

    private async Task<T> WithTimeout<T>(Func<IReplicaPeer, CancellationToken, Task<T>> call, IReplicaPeer peer, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timings.CallTimeout);
        return await call(peer, cts.Token).WaitAsync(cts.Token);
    }

    private static long ToTicks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}
