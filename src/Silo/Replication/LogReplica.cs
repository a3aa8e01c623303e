using Google.Protobuf;
using Wharf.Contracts.Protos.Records;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Replication;

/// <summary>
/// This node's replica of every log whose shard it owns (DESIGN principle 5; docs/architecture.md "Repository logs").
/// Per log it keeps the highest ballot promised, the accepted entries, and how far they are committed (applied to the
/// records). Every answer is decided and persisted under one lock per log, and every change is one RocksDB write batch:
/// a promise, the entries, the records they commit and the new state land together or not at all.
/// </summary>
/// <param name="staleView">
/// Whether a request built on a placement view epoch is stale for a log here: this node knows a newer view in which it
/// does not own the log (null: never, as in tests and with one node).
/// </param>
public sealed class LogReplica(RecordStore store, Func<string, long, bool>? staleView = null)
{
    private const int Stripes = 256;
    private const int MaxFetch = 1024;

    private readonly object[] _locks = [.. Enumerable.Range(0, Stripes).Select(_ => new object())];

    private static string StateKey(string log) => $"lg/{log}\0s";

    private static string EntryPrefix(string log) => $"lg/{log}\0e\0";

    private static string EntryKey(string log, long seq) => EntryPrefix(log) + seq.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    private object LockOf(string log) => _locks[(int)((uint)StringComparer.Ordinal.GetHashCode(log) % Stripes)];

    public PrepareReply Prepare(PrepareRequest request)
    {
        if (staleView?.Invoke(request.Log, request.ViewEpoch) == true)
        {
            return new PrepareReply { StaleView = true, Promised = new Ballot() };
        }
        lock (LockOf(request.Log))
        {
            var state = LoadState(request.Log);
            var reply = new PrepareReply
            {
                Promised = state.Promised ?? new Ballot(),
                Committed = state.Committed,
                Last = state.Last,
                CommittedBallot = state.CommittedBallot ?? new Ballot(),
                HadPromise = state.Promised is not null,
            };
            if (state.Promised is not null && Ballots.Compare(request.Ballot, state.Promised) <= 0)
            {
                return reply;
            }
            reply.PreviousPromised = state.Promised ?? new Ballot();
            state.Promised = request.Ballot;
            store.Write(new RecordBatch().Put(StateKey(request.Log), state.ToByteArray()));
            reply.Ok = true;
            reply.Promised = request.Ballot;
            reply.Entries.AddRange(ReadEntries(request.Log, state.Committed + 1, state.Last));
            return reply;
        }
    }

    public AcceptReply Accept(AcceptRequest request)
    {
        if (request.ViewEpoch != 0 && staleView?.Invoke(request.Log, request.ViewEpoch) == true)
        {
            return new AcceptReply { Result = AcceptResult.StaleView, Promised = new Ballot() };
        }
        lock (LockOf(request.Log))
        {
            var state = LoadState(request.Log);
            if (state.Promised is not null && Ballots.Compare(request.Ballot, state.Promised) < 0)
            {
                return Reply(AcceptResult.Rejected, state);
            }
            var batch = new RecordBatch();
            var changed = false;
            if (state.Promised is null || Ballots.Compare(request.Ballot, state.Promised) > 0)
            {
                state.Promised = request.Ballot;
                changed = true;
            }
            // The leader's entries continue after prev_seq: this replica must hold that entry, under the same ballot
            // (a committed one is the same everywhere), or it lacks history and must be sent it first.
            if (request.PrevSeq > state.Last
                || (request.PrevSeq > state.Committed && !SameBallot(EntryBallot(request.Log, request.PrevSeq), request.PrevBallot)))
            {
                if (changed)
                {
                    store.Write(new RecordBatch().Put(StateKey(request.Log), state.ToByteArray()));
                }
                return Reply(AcceptResult.Lagging, state);
            }
            var verified = request.PrevSeq;
            var pending = new Dictionary<long, Entry>();
            foreach (var entry in request.Entries)
            {
                if (entry.Seq != verified + 1)
                {
                    break;
                }
                verified = entry.Seq;
                if (entry.Seq <= state.Committed)
                {
                    continue;
                }
                var existing = entry.Seq <= state.Last ? EntryBallot(request.Log, entry.Seq) : null;
                if (existing is not null && !SameBallot(existing, entry.Ballot))
                {
                    // A conflicting entry from an older leader: it and everything after it were never committed.
                    for (var s = entry.Seq; s <= state.Last; s++)
                    {
                        batch.Delete(EntryKey(request.Log, s));
                        pending.Remove(s);
                    }
                    state.Last = entry.Seq - 1;
                }
                if (existing is null || !SameBallot(existing, entry.Ballot))
                {
                    batch.Put(EntryKey(request.Log, entry.Seq), entry.ToByteArray());
                    pending[entry.Seq] = entry;
                    state.Last = Math.Max(state.Last, entry.Seq);
                    changed = true;
                }
            }
            // Commit only what is known to match the leader's log.
            var upTo = Math.Min(request.CommitUpTo, verified);
            for (var seq = state.Committed + 1; seq <= upTo; seq++)
            {
                var entry = pending.TryGetValue(seq, out var p) ? p : ReadEntry(request.Log, seq);
                if (entry is null)
                {
                    break;
                }
                ApplyOps(batch, entry);
                state.Committed = seq;
                state.CommittedBallot = entry.Ballot;
                changed = true;
            }
            if (changed)
            {
                batch.Put(StateKey(request.Log), state.ToByteArray());
                store.Write(batch, sync: pending.Count > 0 || !request.NoSync);
            }
            return Reply(AcceptResult.Accepted, state);
        }
    }

    public FetchReply Fetch(FetchRequest request)
    {
        lock (LockOf(request.Log))
        {
            var state = LoadState(request.Log);
            var reply = new FetchReply();
            reply.Entries.AddRange(ReadEntries(request.Log, Math.Max(1, request.From), Math.Min(request.To, Math.Min(state.Last, request.From + MaxFetch - 1))));
            return reply;
        }
    }

    /// <summary>
    /// Drops a finished log: its state, its entries, and the tombstones its entries left (its live records stay).
    /// Refused to a ballot below the promise, like an Accept.
    /// </summary>
    public AcceptReply Forget(ForgetRequest request)
    {
        if (request.Commit is { } commit && commit.Log == request.Log)
        {
            // Committed changes are applied first (verified against this replica's entries as any notice is):
            // forgetting drops the entries, so a change not yet applied here would never be.
            Accept(commit);
        }
        lock (LockOf(request.Log))
        {
            var state = LoadState(request.Log);
            if (state.Promised is not null && Ballots.Compare(request.Ballot, state.Promised) < 0)
            {
                return Reply(AcceptResult.Rejected, state);
            }
            var batch = new RecordBatch();
            var keys = DeleteEntries(request.Log, batch);
            foreach (var key in keys)
            {
                if (store.GetRaw(key) is { } value && RecordStore.IsTombstone(value))
                {
                    batch.Delete(key);
                }
            }
            batch.Delete(LogLeader.QuiesceKey(request.Log));
            // The state becomes a marker: anti-entropy then forgets the log on an owner that missed this call, and
            // never copies it back to one that forgot it.
            batch.Put(StateKey(request.Log), new ReplicaState
            {
                Version = 1,
                Forgotten = true,
                ForgottenUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                Promised = state.Promised ?? request.Ballot,
                Committed = state.Committed,
                CommittedBallot = state.CommittedBallot,
            }.ToByteArray());
            store.Write(batch, sync: false);
            return Reply(AcceptResult.Accepted, new ReplicaState());
        }
    }

    /// <summary>
    /// Drops a forgotten log's marker once it is older than <paramref name="cutoffUnixMs"/> (a node down for longer than
    /// the retention must not rejoin with its data: it could bring the log back). True when it was dropped.
    /// </summary>
    public bool PurgeForgotten(string log, long cutoffUnixMs)
    {
        lock (LockOf(log))
        {
            var raw = store.GetRaw(StateKey(log));
            if (raw is null)
            {
                return false;
            }
            var state = ReplicaState.Parser.ParseFrom(raw);
            if (!state.Forgotten || state.ForgottenUnixMs > cutoffUnixMs)
            {
                return false;
            }
            store.Write(new RecordBatch().Delete(StateKey(log)), sync: false);
            return true;
        }
    }

    /// <summary>Anti-entropy: forgets a log that another owner has forgotten (the log finished; this owner missed it).</summary>
    public bool ForgetLocally(string log)
    {
        var raw = store.GetRaw(StateKey(log));
        var state = raw is null ? null : ReplicaState.Parser.ParseFrom(raw);
        if (state is null || state.Forgotten)
        {
            return false;
        }
        return Forget(new ForgetRequest { Log = log, Ballot = state.Promised ?? new Ballot() }).Result == AcceptResult.Accepted;
    }

    /// <summary>A log this replica holds: its id and how far it is committed (what anti-entropy compares).</summary>
    public readonly record struct HeldLog(string Log, long Committed, Ballot? CommittedBallot, bool Forgotten, long ForgottenUnixMs = 0);

    /// <summary>Every log this replica holds a state for, in id order: one pass over the log keys, skipping entries.</summary>
    public List<HeldLog> ListLogs()
    {
        var logs = new List<HeldLog>();
        store.Walk("lg/", (suffix, value) =>
        {
            var sep = suffix.IndexOf('\0', StringComparison.Ordinal);
            if (sep < 0)
            {
                return null;
            }
            var log = suffix[..sep];
            var kind = suffix.AsSpan(sep + 1);
            if (kind.SequenceEqual("s") && !RecordStore.IsTombstone(value))
            {
                var state = ReplicaState.Parser.ParseFrom(value);
                logs.Add(new HeldLog(log, state.Committed, state.CommittedBallot, state.Forgotten, state.ForgottenUnixMs));
                // Past this log: its state is its last key ("e" entries and the "q" marker sort before "s").
                return log + "\0t";
            }
            // An entry or the quiesce marker: jump to the state key.
            return kind.Length > 0 && kind[0] < 's' ? log + "\0s" : null;
        });
        return logs;
    }

    /// <summary>
    /// Anti-entropy: takes committed entries of a log fetched from another owner, contiguous from this replica's commit
    /// point, and commits them here as one write batch (the entries, their records, the new state). Committed entries
    /// are the same on every owner, so this needs no leader; own uncommitted entries that conflict with them, and those
    /// after them, are dropped (they were never committed). Returns how many entries were newly committed.
    /// </summary>
    public int ApplyCommitted(string log, IReadOnlyList<Entry> committed)
    {
        lock (LockOf(log))
        {
            var state = LoadState(log);
            var batch = new RecordBatch();
            var applied = 0;
            var conflict = false;
            foreach (var entry in committed)
            {
                if (entry.Seq <= state.Committed)
                {
                    continue;
                }
                if (entry.Seq != state.Committed + 1)
                {
                    break;
                }
                if (entry.Seq <= state.Last && !SameBallot(EntryBallot(log, entry.Seq), entry.Ballot))
                {
                    conflict = true;
                }
                batch.Put(EntryKey(log, entry.Seq), entry.ToByteArray());
                ApplyOps(batch, entry);
                state.Committed = entry.Seq;
                state.CommittedBallot = entry.Ballot;
                state.Last = Math.Max(state.Last, entry.Seq);
                applied++;
            }
            if (applied == 0)
            {
                return 0;
            }
            if (conflict)
            {
                for (var seq = state.Committed + 1; seq <= state.Last; seq++)
                {
                    batch.Delete(EntryKey(log, seq));
                }
                state.Last = state.Committed;
            }
            // A replica that never promised on this log takes the committed ballot as its floor: every later leader
            // holds a higher one, and a current leader holds at least this one.
            if (state.Promised is null || Ballots.Compare(state.Promised, state.CommittedBallot) < 0)
            {
                state.Promised = state.CommittedBallot;
            }
            batch.Put(StateKey(log), state.ToByteArray());
            store.Write(batch, sync: true);
            return applied;
        }
    }

    /// <summary>
    /// Syncing a shard a transition gave this node: entries a previous owner holds above its commit point (accepted,
    /// not known committed), each taken as the accept its leader sent, in order — refused like any accept when this
    /// replica promised a higher ballot since, or when it does not continue this replica's log. So a new owner holds
    /// what an old owner had accepted, and a later leader's recovery finds it. Returns how many were taken.
    /// </summary>
    public int AcceptLate(string log, IReadOnlyList<Entry> entries)
    {
        var taken = 0;
        Ballot? previous = null;
        foreach (var entry in entries)
        {
            var state = State(log);
            if (entry.Seq <= state.Committed)
            {
                previous = entry.Ballot;
                continue;
            }
            var prevBallot = entry.Seq - 1 == state.Committed ? state.CommittedBallot ?? new Ballot() : previous;
            if (prevBallot is null)
            {
                break;
            }
            var request = new AcceptRequest { Log = log, Ballot = entry.Ballot, PrevSeq = entry.Seq - 1, PrevBallot = prevBallot };
            request.Entries.Add(entry);
            if (Accept(request).Result != AcceptResult.Accepted)
            {
                break;
            }
            previous = entry.Ballot;
            taken++;
        }
        return taken;
    }

    /// <summary>
    /// Drops a log this node no longer owns, once every owner holds it: its state, entries, marker and every record its
    /// entries wrote (values and tombstones). Returns the keys removed.
    /// </summary>
    public int Drop(string log)
    {
        lock (LockOf(log))
        {
            var batch = new RecordBatch();
            var keys = DeleteEntries(log, batch);
            foreach (var key in keys)
            {
                batch.Delete(key);
            }
            batch.Delete(StateKey(log));
            batch.Delete(LogLeader.QuiesceKey(log));
            store.Write(batch, sync: true);
            return batch.Count;
        }
    }

    /// <summary>What a check of a log's records against its entries found.</summary>
    public readonly record struct VerifyResult(long Entries, int Fixed, long MissingEntry);

    /// <summary>
    /// Re-derives a log's records from its committed entries and rewrites any that differ in the store (a record lost
    /// or changed behind the store's back; a deleted one comes back as its tombstone, never as a value). Nothing is
    /// changed when an entry itself is missing: <see cref="VerifyResult.MissingEntry"/> then names the first missing
    /// sequence number, to be fetched from another owner.
    /// </summary>
    public VerifyResult Verify(string log)
    {
        lock (LockOf(log))
        {
            var state = LoadState(log);
            var expected = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            for (var seq = 1L; seq <= state.Committed; seq++)
            {
                var entry = ReadEntry(log, seq);
                if (entry is null)
                {
                    return new VerifyResult(seq - 1, 0, seq);
                }
                foreach (var op in entry.Ops)
                {
                    expected[op.Key] = op.Delete ? RecordStore.Tombstone(seq) : op.Value.ToByteArray();
                }
            }
            var batch = new RecordBatch();
            foreach (var (key, value) in expected)
            {
                var actual = store.GetRaw(key);
                if (actual is null || !actual.AsSpan().SequenceEqual(value))
                {
                    batch.Put(key, value);
                }
            }
            if (batch.Count > 0)
            {
                store.Write(batch, sync: true);
            }
            return new VerifyResult(state.Committed, batch.Count, 0);
        }
    }

    /// <summary>
    /// Puts back committed entries that went missing here (fetched from another owner), without touching the state
    /// or the records; a later <see cref="Verify"/> re-derives the records from them.
    /// </summary>
    public int RestoreEntries(string log, IReadOnlyList<Entry> committed)
    {
        lock (LockOf(log))
        {
            var state = LoadState(log);
            var batch = new RecordBatch();
            foreach (var entry in committed)
            {
                if (entry.Seq <= state.Committed && ReadEntry(log, entry.Seq) is null)
                {
                    batch.Put(EntryKey(log, entry.Seq), entry.ToByteArray());
                }
            }
            if (batch.Count > 0)
            {
                store.Write(batch, sync: true);
            }
            return batch.Count;
        }
    }

    /// <summary>Adds the deletion of every entry of a log to <paramref name="batch"/>; returns the keys those entries wrote.</summary>
    private HashSet<string> DeleteEntries(string log, RecordBatch batch)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        string? after = null;
        List<KeyValuePair<string, byte[]>> page;
        do
        {
            page = store.Scan(EntryPrefix(log), after, 512, tombstones: true);
            foreach (var (suffix, raw) in page)
            {
                batch.Delete(EntryPrefix(log) + suffix);
                foreach (var op in Entry.Parser.ParseFrom(raw).Ops)
                {
                    keys.Add(op.Key);
                }
                after = suffix;
            }
        }
        while (page.Count == 512);
        return keys;
    }

    private static void ApplyOps(RecordBatch batch, Entry entry)
    {
        foreach (var op in entry.Ops)
        {
            batch.Put(op.Key, op.Delete ? RecordStore.Tombstone(entry.Seq) : op.Value.ToByteArray());
        }
    }

    /// <summary>This replica's state of a log (for tests and the admin view).</summary>
    public ReplicaState State(string log)
    {
        lock (LockOf(log))
        {
            return LoadState(log);
        }
    }

    private static AcceptReply Reply(AcceptResult result, ReplicaState state) => new()
    {
        Result = result,
        Promised = state.Promised ?? new Ballot(),
        Committed = state.Committed,
        Last = state.Last,
    };

    private ReplicaState LoadState(string log)
    {
        var raw = store.GetRaw(StateKey(log));
        if (raw is null)
        {
            return new ReplicaState { Version = 1 };
        }
        var state = ReplicaState.Parser.ParseFrom(raw);
        // A forgotten log reads as empty (its entries are gone), keeping only its promise floor.
        return state.Forgotten ? new ReplicaState { Version = 1, Promised = state.Promised } : state;
    }

    private Entry? ReadEntry(string log, long seq)
    {
        var raw = store.GetRaw(EntryKey(log, seq));
        return raw is null ? null : Entry.Parser.ParseFrom(raw);
    }

    private Ballot? EntryBallot(string log, long seq) => ReadEntry(log, seq)?.Ballot;

    private List<Entry> ReadEntries(string log, long from, long to)
    {
        var entries = new List<Entry>();
        for (var seq = from; seq <= to; seq++)
        {
            var e = ReadEntry(log, seq);
            if (e is null)
            {
                break;
            }
            entries.Add(e);
        }
        return entries;
    }

    private static bool SameBallot(Ballot? a, Ballot? b) => a is not null && b is not null && Ballots.Compare(a, b) == 0;
}

public static class Ballots
{
    /// <summary>Orders ballots by counter, then node id (ordinal).</summary>
    public static int Compare(Ballot a, Ballot b)
    {
        var c = a.Counter.CompareTo(b.Counter);
        return c != 0 ? c : string.CompareOrdinal(a.Node, b.Node);
    }

    public static string Format(Ballot? b) => b is null ? "none" : $"({b.Counter}, {b.Node})";
}
