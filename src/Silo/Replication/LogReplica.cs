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
                foreach (var op in entry.Ops)
                {
                    if (op.Delete)
                    {
                        batch.Put(op.Key, RecordStore.Tombstone(seq));
                    }
                    else
                    {
                        batch.Put(op.Key, op.Value.ToByteArray());
                    }
                }
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
        lock (LockOf(request.Log))
        {
            var state = LoadState(request.Log);
            if (state.Promised is not null && Ballots.Compare(request.Ballot, state.Promised) < 0)
            {
                return Reply(AcceptResult.Rejected, state);
            }
            var batch = new RecordBatch();
            var keys = new HashSet<string>(StringComparer.Ordinal);
            string? after = null;
            List<KeyValuePair<string, byte[]>> page;
            do
            {
                page = store.Scan(EntryPrefix(request.Log), after, 512, tombstones: true);
                foreach (var (suffix, raw) in page)
                {
                    batch.Delete(EntryPrefix(request.Log) + suffix);
                    foreach (var op in Entry.Parser.ParseFrom(raw).Ops)
                    {
                        keys.Add(op.Key);
                    }
                    after = suffix;
                }
            }
            while (page.Count == 512);
            foreach (var key in keys)
            {
                if (store.GetRaw(key) is { } value && RecordStore.IsTombstone(value))
                {
                    batch.Delete(key);
                }
            }
            batch.Delete(StateKey(request.Log));
            batch.Delete(LogLeader.QuiesceKey(request.Log));
            store.Write(batch, sync: false);
            return Reply(AcceptResult.Accepted, new ReplicaState());
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
        return raw is null ? new ReplicaState { Version = 1 } : ReplicaState.Parser.ParseFrom(raw);
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
