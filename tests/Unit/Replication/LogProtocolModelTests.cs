using CsCheck;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Protos.Records;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Replication;

/// <summary>
/// The record protocol (DESIGN principle 5) against a single-copy model, with CsCheck: three owners on real RocksDB
/// stores, R = 3, W = 2; two grain activations on two nodes recovering and appending in random interleavings (some of
/// them concurrent), requests and replies lost at random, and one replica that goes away and comes back lagging.
/// Each batch writes the same value to three keys (or deletes all three), so a batch applied in part shows up as keys
/// that disagree. Checked after every step: no acknowledged change is lost, nothing older than an acknowledged or
/// already observed change is served, and no replica ever holds part of a batch.
/// </summary>
public sealed class LogProtocolModelTests : IDisposable
{
    private static readonly string[] Nodes = ["n1", "n2", "n3"];
    private static readonly LeaderTimings Timings = new(TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.Zero);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "wharf-logmodel-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, RecordStore> _stores = [];
    private readonly Dictionary<string, LogReplica> _replicas = [];
    private int _logs;

    public LogProtocolModelTests()
    {
        foreach (var node in Nodes)
        {
            _stores[node] = RecordStore.Open(Path.Combine(_root, node));
            _replicas[node] = new LogReplica(_stores[node]);
        }
    }

    public void Dispose()
    {
        foreach (var store in _stores.Values)
        {
            store.Dispose();
        }
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Random_interleavings_of_two_leaders_with_message_loss_and_a_lagging_replica_lose_no_acknowledged_change()
    {
        Gen.Select(Gen.UInt, Gen.Int[0, 99].Array[10, 60])
            .Sample((seed, steps) => Run(seed, steps), iter: 300, threads: 1);
    }

    [Fact]
    public void A_deposed_leader_is_refused_whole_and_serves_no_reads()
    {
        var log = NextLog();
        var net = new Network(1);
        var a = Leader("n1", log, net);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        a.AppendAsync(Batch(log, "a1")).GetAwaiter().GetResult();
        var b = Leader("n2", log, net);
        b.RecoverAsync(default).GetAwaiter().GetResult();
        Assert.Equal("a1", Read(log, "n2"));
        b.AppendAsync(Batch(log, "b1")).GetAwaiter().GetResult();

        var append = Assert.Throws<LogUnavailableException>(() => a.AppendAsync(Batch(log, "a2")).GetAwaiter().GetResult());
        Assert.Contains("deposed", append.Message);
        Assert.Throws<LogUnavailableException>(() => a.EnsureReadableAsync().GetAwaiter().GetResult());
        foreach (var node in Nodes)
        {
            Assert.NotEqual("a2", Read(log, node));
        }
        Assert.Equal("b1", Read(log, "n2"));
    }

    [Fact]
    public void Recovery_keeps_the_entry_accepted_under_the_highest_ballot_when_owners_disagree_about_an_uncommitted_position()
    {
        var log = NextLog();
        var net = new Network(3);
        var a = Leader("n1", log, net);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        // A's entry 1 reaches only its own node: not acknowledged.
        net.Down.UnionWith(["n2", "n3"]);
        Assert.Throws<LogUnavailableException>(() => a.AppendAsync(Batch(log, "a1")).GetAwaiter().GetResult());
        // B takes over without n1 and writes its own entry 1 on n2 and n3: acknowledged. n3 never hears it committed.
        net.Down.Clear();
        net.Down.Add("n1");
        var b = Leader("n2", log, net);
        b.RecoverAsync(default).GetAwaiter().GetResult();
        net.DropNotices = true;
        b.AppendAsync(Batch(log, "b1")).GetAwaiter().GetResult();
        Assert.Equal(0, _replicas["n3"].State(log).Committed);
        // C recovers from n1 (A's entry 1) and n3 (B's entry 1, higher ballot): B's, the acknowledged one, must win.
        net.Down.Clear();
        net.Down.Add("n2");
        net.DropNotices = false;
        var c = Leader("n1", log, net);
        c.RecoverAsync(default).GetAwaiter().GetResult();
        Assert.Equal("b1", Read(log, "n1"));
        // A heartbeat (both live owners must answer it) carries the commit point to n3.
        c.EnsureReadableAsync().GetAwaiter().GetResult();
        Assert.Equal("b1", Read(log, "n3"));
    }

    [Fact]
    public void A_forgotten_log_leaves_only_a_forgotten_marker_no_entries_or_tombstones_on_its_owners_and_its_live_records_stay()
    {
        var log = NextLog();
        var net = new Network(4);
        var a = Leader("n1", log, net);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        a.AppendAsync(new RecordBatch().Put($"{log}\0keep", [1]).Put($"{log}\0gone", [2])).GetAwaiter().GetResult();
        a.AppendAsync(new RecordBatch().Delete($"{log}\0gone")).GetAwaiter().GetResult();
        a.EnsureReadableAsync().GetAwaiter().GetResult();
        a.ForgetAsync().GetAwaiter().GetResult();
        foreach (var node in Nodes)
        {
            // What remains is the state as a marker, so anti-entropy never copies the log back to this owner.
            var left = Assert.Single(_stores[node].Scan($"lg/{log}\0", null, 10, tombstones: true));
            Assert.Equal("s", left.Key);
            Assert.True(ReplicaState.Parser.ParseFrom(left.Value).Forgotten);
            Assert.Null(_stores[node].GetRaw($"{log}\0gone"));
            Assert.Equal([1], _stores[node].Get($"{log}\0keep"));
        }
        Assert.Throws<LogUnavailableException>(() => a.AppendAsync(Batch(log, "after")).GetAwaiter().GetResult());
    }

    [Fact]
    public void A_forget_applies_the_last_committed_change_on_owners_whose_commit_notice_was_lost()
    {
        // An upload ends: its record is deleted, then its log forgotten. The delete's own commit notice is lost (or
        // arrives after the Forget): the Forget carries the commit, so no owner keeps the deleted record live.
        var log = NextLog();
        var net = new Network(6);
        var a = Leader("n1", log, net);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        a.AppendAsync(new RecordBatch().Put($"{log}\0keep", [1]).Put($"{log}\0gone", [2])).GetAwaiter().GetResult();
        net.DropNotices = true;
        a.AppendAsync(new RecordBatch().Delete($"{log}\0gone")).GetAwaiter().GetResult();
        Assert.Contains(Nodes, node => _stores[node].Get($"{log}\0gone") is not null);
        a.ForgetAsync().GetAwaiter().GetResult();
        foreach (var node in Nodes)
        {
            Assert.Null(_stores[node].Get($"{log}\0gone"));
            Assert.Equal([1], _stores[node].Get($"{log}\0keep"));
            Assert.True(_replicas[node].ListLogs().Single(l => l.Log == log).Forgotten);
        }
    }

    [Fact]
    public void A_leader_after_a_clean_step_down_waits_for_nothing_but_one_after_a_leader_that_led_without_writing_does()
    {
        var log = NextLog();
        var net = new Network(5);
        var leased = new LeaderTimings(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5), TimeSpan.Zero);
        LogLeader Lead(string node)
        {
            var leader = new LogLeader(log, node, [.. Nodes.Select(n => n == node ? (IReplicaPeer)new LocalReplicaPeer(n, _replicas[n]) : new FaultyPeer(n, _replicas[n], net))], 2, leased);
            leader.RecoverAsync(default).GetAwaiter().GetResult();
            return leader;
        }

        var a = Lead("n1");
        a.AppendAsync(Batch(log, "a1")).GetAwaiter().GetResult();
        a.QuiesceAsync().GetAwaiter().GetResult();
        var b = Lead("n2");
        Assert.True(b.HadPreviousLeader);
        Assert.True(b.ResumedQuiesced);
        Assert.Equal(TimeSpan.Zero, b.PreviousLeaderReadLease);
        // No wait: with a 30 s lease this would otherwise hang the test's timeout.
        Assert.True(b.AppendAsync(Batch(log, "b1")).Wait(TimeSpan.FromSeconds(10)));
        b.QuiesceAsync().GetAwaiter().GetResult();

        // c leads (and may serve reads and grant leases) without writing, then vanishes: d must wait.
        var c = Lead("n3");
        Assert.True(c.ResumedQuiesced);
        var d = Lead("n1");
        Assert.False(d.ResumedQuiesced);
        Assert.Equal(TimeSpan.FromSeconds(30), d.PreviousLeaderReadLease);
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        Assert.ThrowsAny<OperationCanceledException>(() => d.AppendAsync(Batch(log, "d1"), patience.Token).GetAwaiter().GetResult());
    }

    [Fact]
    public void An_owner_that_knows_a_newer_view_in_which_it_does_not_own_the_log_refuses_a_leader_of_the_older_view()
    {
        var log = NextLog();
        var moved = false;
        // n3's view: from epoch 7 on it no longer owns this log.
        var replicas = Nodes.ToDictionary(n => n, n => n == "n3" ? new LogReplica(_stores[n], (_, epoch) => moved && epoch < 7) : _replicas[n]);
        LogLeader Lead(long epoch) =>
            new(log, "n1", [.. Nodes.Select(n => n == "n1" ? (IReplicaPeer)new LocalReplicaPeer(n, replicas[n]) : new FaultyPeer(n, replicas[n], new Network(6)))], 3, Timings, viewEpoch: epoch);

        // W = 3 here, so every owner's answer counts.
        var a = Lead(6);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        a.AppendAsync(Batch(log, "a1")).GetAwaiter().GetResult();
        moved = true;
        var append = Assert.Throws<LogUnavailableException>(() => a.AppendAsync(Batch(log, "a2")).GetAwaiter().GetResult());
        Assert.Contains("newer placement view", append.Message);
        var recover = Assert.Throws<LogUnavailableException>(() => Lead(6).RecoverAsync(default).GetAwaiter().GetResult());
        Assert.Contains("newer placement view", recover.Message);
        // A leader of the new view is not refused (here n3 is still asked, as a test of the epoch check alone).
        var b = Lead(7);
        b.RecoverAsync(default).GetAwaiter().GetResult();
        b.AppendAsync(Batch(log, "b1")).GetAwaiter().GetResult();
        Assert.Equal("b1", Read(log, "n1"));
    }

    [Theory]
    [InlineData("r/library/alpine")]
    [InlineData("u/0123456789abcdef0123456789abcdef")]
    [InlineData("c/7")]
    public void The_shard_of_a_log_id_is_the_shard_of_its_grain(string log)
    {
        var expected = log[..2] switch
        {
            "r/" => Wharf.Contracts.Placement.Shards.OfRepository(log[2..]),
            "u/" => Wharf.Contracts.Placement.Shards.OfUpload(log[2..]),
            _ => Wharf.Contracts.Placement.Shards.OfCatalogShard(long.Parse(log[2..], System.Globalization.CultureInfo.InvariantCulture)),
        };
        Assert.Equal(expected, ReplicatedLogs.ShardOfLog(log));
    }

    [Fact]
    public void A_replica_that_missed_appends_is_caught_up_from_the_leaders_log_and_a_later_leader_on_it_serves_everything()
    {
        var log = NextLog();
        var net = new Network(2);
        net.Down.Add("n3");
        var a = Leader("n1", log, net);
        a.RecoverAsync(default).GetAwaiter().GetResult();
        for (var i = 0; i < 1100; i++)
        {
            a.AppendAsync(Batch(log, $"v{i}")).GetAwaiter().GetResult();
        }
        Assert.Null(Read(log, "n3"));
        net.Down.Clear();
        a.AppendAsync(Batch(log, "last")).GetAwaiter().GetResult();
        a.EnsureReadableAsync().GetAwaiter().GetResult();
        // n3 took the 1,101 entries it missed in pages; a leader on it (with n1 away) serves the last value.
        net.Down.Add("n1");
        var c = Leader("n3", log, net);
        c.RecoverAsync(default).GetAwaiter().GetResult();
        Assert.Equal("last", Read(log, "n3"));
        Assert.Equal(_replicas["n2"].State(log).Committed, _replicas["n3"].State(log).Committed);
    }

    private void Run(uint seed, int[] steps)
    {
        var log = NextLog();
        var net = new Network(seed);
        var model = new Model();
        var leaders = new System.Collections.Concurrent.ConcurrentDictionary<string, LogLeader?> { ["n1"] = null, ["n2"] = null };
        var value = 0;

        foreach (var step in steps)
        {
            var node = step % 2 == 0 ? "n1" : "n2";
            switch (step)
            {
                case < 12:
                    Try(() => Recover(node));
                    break;
                case < 18:
                    // Two activations at once: one recovers while the other appends.
                    var other = node == "n1" ? "n2" : "n1";
                    var v = $"v{++value}";
                    var index = model.Write(v);
                    var append = Task.Run(() => AppendAsync(other, v, index));
                    var recover = Task.Run(() => Try(() => Recover(node)));
                    Task.WaitAll(append, recover);
                    break;
                case < 55:
                    var written = step % 9 == 0 ? null : $"v{++value}";
                    AppendAsync(node, written, model.Write(written)).GetAwaiter().GetResult();
                    break;
                case < 80:
                    ReadThrough(node);
                    break;
                case < 90:
                    if (!net.Down.Remove("n3"))
                    {
                        net.Down.Add("n3");
                    }
                    break;
                default:
                    net.Loss = (step % 3) switch { 0 => 0, 1 => 0.1, _ => 0.3 };
                    break;
            }
            AssertNoPartialBatch(log);
        }

        // Everything heals: a fresh leader must serve the latest acknowledged (or later observed) value.
        net.Down.Clear();
        net.Loss = 0;
        // A leader can still find itself outranked by a promise an earlier, failed recovery left on an owner it had
        // not heard from; like a grain, it then gives way to a fresh activation with a higher ballot.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var final = Leader("n1", log, net);
                final.RecoverAsync(default).GetAwaiter().GetResult();
                final.EnsureReadableAsync().GetAwaiter().GetResult();
                break;
            }
            catch (LogUnavailableException) when (attempt < 3)
            {
            }
        }
        model.Observe(Read(log, "n1"), $"final read (seed {seed})");
        AssertNoPartialBatch(log);

        void Recover(string n)
        {
            var leader = Leader(n, log, net);
            leader.RecoverAsync(default).GetAwaiter().GetResult();
            leaders[n] = leader;
        }

        async Task AppendAsync(string n, string? v, int index)
        {
            if (leaders[n] is not { } leader)
            {
                return;
            }
            try
            {
                await leader.AppendAsync(Batch(log, v));
                model.Acknowledge(index);
            }
            catch (LogUnavailableException)
            {
                leaders[n] = null;
            }
        }

        void ReadThrough(string n)
        {
            if (leaders[n] is not { } leader)
            {
                return;
            }
            try
            {
                leader.EnsureReadableAsync().GetAwaiter().GetResult();
            }
            catch (LogUnavailableException)
            {
                leaders[n] = null;
                return;
            }
            model.Observe(Read(log, n), $"read through {n} (seed {seed}, steps [{string.Join(",", steps)}])");
        }

        void Try(Action action)
        {
            try
            {
                action();
            }
            catch (LogUnavailableException)
            {
            }
        }
    }

    private string NextLog() => $"r/model-{Interlocked.Increment(ref _logs)}";

    private LogLeader Leader(string self, string log, Network net) =>
        new(log, self, [.. Nodes.Select(n => n == self ? (IReplicaPeer)new LocalReplicaPeer(n, _replicas[n]) : new FaultyPeer(n, _replicas[n], net))], 2, Timings);

    private static string Key(string log, int i) => $"{log}\0k{i}";

    private static RecordBatch Batch(string log, string? value)
    {
        var batch = new RecordBatch();
        for (var i = 0; i < 3; i++)
        {
            if (value is null)
            {
                batch.Delete(Key(log, i));
            }
            else
            {
                batch.Put(Key(log, i), System.Text.Encoding.UTF8.GetBytes(value));
            }
        }
        return batch;
    }

    private string? Read(string log, string node)
    {
        // One snapshot: a commit notice still being applied in the background is seen whole or not at all.
        var values = _stores[node].GetMany([.. Enumerable.Range(0, 3).Select(i => Key(log, i))])
            .Select(raw => raw is null ? null : System.Text.Encoding.UTF8.GetString(raw)).ToList();
        Assert.True(values.Distinct().Count() == 1, $"{node} holds part of a batch: [{string.Join(", ", values)}]");
        return values[0];
    }

    private void AssertNoPartialBatch(string log)
    {
        foreach (var node in Nodes)
        {
            _ = Read(log, node);
        }
    }

    /// <summary>The single copy: every attempted write in order; reads may return the newest acknowledged or any later one.</summary>
    private sealed class Model
    {
        private readonly List<string?> _writes = [];
        private int _floor = -1;
        private readonly object _gate = new();

        public int Write(string? value)
        {
            lock (_gate)
            {
                _writes.Add(value);
                return _writes.Count - 1;
            }
        }

        public void Acknowledge(int index)
        {
            lock (_gate)
            {
                _floor = Math.Max(_floor, index);
            }
        }

        public void Observe(string? value, string where)
        {
            lock (_gate)
            {
                // The initial state (index -1) is absent; a deletion is absent too.
                var candidates = Enumerable.Range(-1, _writes.Count + 1).Where(i => i >= _floor && (i < 0 ? null : _writes[i]) == value).ToList();
                Assert.True(candidates.Count > 0,
                    $"{where}: served '{value ?? "(absent)"}', but the newest acknowledged or observed write is #{_floor} '{(_floor < 0 ? "(absent)" : _writes[_floor] ?? "(deleted)")}'");
                _floor = Math.Max(_floor, candidates[0]);
            }
        }
    }

    private sealed class Network(uint seed)
    {
        private readonly Random _random = new((int)seed);

        public HashSet<string> Down { get; } = [];

        public double Loss { get; set; }

        /// <summary>Loses every accept that carries no entries (commit notices and heartbeats).</summary>
        public bool DropNotices { get; set; }

        public bool Lose()
        {
            lock (_random)
            {
                return Loss > 0 && _random.NextDouble() < Loss;
            }
        }
    }

    /// <summary>Another node's replica over a network that loses requests and replies, and loses everything to a node that is down.</summary>
    private sealed class FaultyPeer(string node, LogReplica replica, Network net) : IReplicaPeer
    {
        public string NodeId => node;

        public Task<PrepareReply> PrepareAsync(PrepareRequest request, CancellationToken cancellationToken) => Call(() => replica.Prepare(request));

        public Task<AcceptReply> AcceptAsync(AcceptRequest request, CancellationToken cancellationToken) =>
            Call(() => replica.Accept(request), lost: net.DropNotices && request.Entries.Count == 0);

        public Task<FetchReply> FetchAsync(FetchRequest request, CancellationToken cancellationToken) => Call(() => replica.Fetch(request));

        public Task<AcceptReply> ForgetAsync(ForgetRequest request, CancellationToken cancellationToken) => Call(() => replica.Forget(request));

        private async Task<T> Call<T>(Func<T> handle, bool lost = false)
        {
            await Task.Yield();
            if (lost || net.Down.Contains(node) || net.Lose())
            {
                throw new IOException($"request to {node} lost");
            }
            var reply = handle();
            await Task.Yield();
            return net.Lose() ? throw new IOException($"reply from {node} lost") : reply;
        }
    }
}
