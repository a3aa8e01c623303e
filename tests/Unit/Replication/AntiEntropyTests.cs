using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo;
using Wharf.Silo.Observability;
using Wharf.Silo.Repair;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Replication;

/// <summary>
/// Anti-entropy between real silos' stores: each node a RecordStore and BlobStore on its own RocksDB, serving the
/// record, byte and repair services on Kestrel (HTTP/2, 127.0.0.1), with its own repair loop run one pass at a time.
/// Writes that reached only some owners, keys lost behind a store's back, a deletion one owner missed and a copy held
/// where it does not belong all converge, and nothing deleted comes back.
/// </summary>
public sealed class AntiEntropyTests : IAsyncLifetime
{
    private static readonly LeaderTimings Fast = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(10));

    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-anti-entropy-").FullName;
    private readonly List<Node> _nodes = [];
    private PlacementView _view = PlacementView.Empty;
    private readonly TransitionReports _reports = new(new LocalCasStore(), "test");

    private sealed record Node(string Id, WebApplication App, RecordStore Records, BlobStore Blobs, LogReplica Replica, TopologyFeed Feed, AntiEntropy Repair, RepairPeers Peers, WharfOptions Options);

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    private async Task StartAsync(int count, int replicas)
    {
        var nodes = new List<PlacementNode>();
        for (var i = 0; i < count; i++)
        {
            var id = $"node-{i}";
            var dir = Path.Combine(_dir, id);
            var records = RecordStore.Open(Path.Combine(dir, "db"));
            var blobs = new BlobStore(records, dir);
            var replica = new LogReplica(records);
            var feed = new TopologyFeed(new PlacementViewStore(null!, "test"), NullLogger<TopologyFeed>.Instance);
            var peers = new RepairPeers();
            var options = new WharfOptions();
            options.Repair.TransitionSettle = TimeSpan.Zero;
            var repair = new AntiEntropy(replica, blobs, feed, new NodeIdentity(id), peers, new RepairMetrics(), options, NullLogger<AntiEntropy>.Instance, _reports);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(blobs);
            builder.Services.AddSingleton(replica);
            builder.Services.AddSingleton(repair);
            var app = builder.Build();
            app.MapGrpcService<ByteServiceEndpoint>();
            app.MapGrpcService<RecordServiceEndpoint>();
            app.MapGrpcService<RepairServiceEndpoint>();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            nodes.Add(new PlacementNode(id, NodeState.Active, "", 1.0, address));
            _nodes.Add(new Node(id, app, records, blobs, replica, feed, repair, peers, options));
        }
        _view = new PlacementView(1, nodes, replicas, replicas / 2 + 1);
        foreach (var n in _nodes)
        {
            n.Feed.Publish(_view);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes)
        {
            n.Peers.Dispose();
            await n.App.StopAsync();
            await n.App.DisposeAsync();
            n.Records.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private Node N(int i) => _nodes[i];

    /// <summary>A new view epoch with one node's state changed, as the coordinator would publish it.</summary>
    private void Publish(string nodeId, NodeState state, bool transition = false)
    {
        var next = _view with { Epoch = _view.Epoch + 1, Nodes = [.. _view.Nodes.Select(n => n.NodeId == nodeId ? n with { State = state } : n)] };
        if (transition)
        {
            next = next with { Previous = _view.Nodes, TransitionEpoch = next.Epoch };
        }
        Publish(next);
    }

    private void Publish(PlacementView view)
    {
        _view = view;
        foreach (var n in _nodes)
        {
            n.Feed.Publish(_view);
        }
    }

    /// <summary>A leader of <paramref name="log"/> on the first of <paramref name="on"/>, replicating to those nodes only.</summary>
    private async Task<LogLeader> LeadAsync(string log, params int[] on)
    {
        var peers = on.Select(i => (IReplicaPeer)new LocalReplicaPeer(N(i).Id, N(i).Replica)).ToList();
        var leader = new LogLeader(log, N(on[0]).Id, peers, Math.Min(on.Length, _view.WriteQuorum), Fast, viewEpoch: _view.Epoch);
        await leader.RecoverAsync(TestContext.Current.CancellationToken);
        return leader;
    }

    private static RecordBatch Put(string key, string value) => new RecordBatch().Put(key, Encoding.UTF8.GetBytes(value));

    private Task<RepairPass> PassAsync(int i, bool verify = false) => N(i).Repair.RunPassAsync(verify, TestContext.Current.CancellationToken);

    private static string? Text(Node n, string key) => n.Records.Get(key) is { } v ? Encoding.UTF8.GetString(v) : null;

    private static (byte[] Bytes, Digest Digest) Blob(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return (b, Digest.Parse("sha256:" + Convert.ToHexStringLower(SHA256.HashData(b))));
    }

    private static async Task<byte[]?> ReadAsync(Node n, Digest digest)
    {
        var size = await n.Blobs.StatAsync(digest, default);
        if (size is null)
        {
            return null;
        }
        await using var s = await n.Blobs.OpenReadAsync(digest, 0, size.Value, default);
        using var copy = new MemoryStream();
        await s!.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_log_written_to_two_of_three_owners_reaches_the_third_and_is_then_fully_replicated()
    {
        await StartAsync(3, replicas: 3);
        const string log = "r/team/app";
        var leader = await LeadAsync(log, 0, 1);
        await leader.AppendAsync(Put("r/team/app\0t\0v1", "digest-1"));
        await leader.AppendAsync(Put("r/team/app\0t\0v2", "digest-2"));
        await leader.AppendAsync(new RecordBatch().Delete("r/team/app\0t\0v1"));

        var before = await PassAsync(0);
        Assert.Equal(1, before.LogsUnderReplicated);
        Assert.Null(Text(N(2), "r/team/app\0t\0v2"));

        var pulled = await PassAsync(2);
        Assert.Equal(3, pulled.LogEntriesPulled);
        Assert.Equal("digest-2", Text(N(2), "r/team/app\0t\0v2"));
        Assert.Null(Text(N(2), "r/team/app\0t\0v1"));
        Assert.Equal(N(0).Replica.State(log).Committed, N(2).Replica.State(log).Committed);

        // Node 1 may hold the last commit point only after the next round; a pass settles that too.
        await PassAsync(1);
        foreach (var i in new[] { 0, 1, 2 })
        {
            Assert.Equal(0, (await PassAsync(i)).LogsUnderReplicated);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_tag_deleted_while_one_owner_was_down_stays_deleted_after_it_returns()
    {
        await StartAsync(3, replicas: 3);
        const string log = "r/team/web";
        const string tag = "r/team/web\0t\0latest";
        var first = await LeadAsync(log, 0, 1, 2);
        await first.AppendAsync(Put(tag, "digest-1"));
        await first.AppendAsync(Put("r/team/web\0h", "header"));
        // Node 2 goes down; a new leader deletes the tag on the two that remain.
        var second = await LeadAsync(log, 1, 0);
        await second.AppendAsync(new RecordBatch().Delete(tag));
        Assert.NotNull(Text(N(2), tag));

        // Node 2 returns: every node passes, the returning one last and first again.
        foreach (var i in new[] { 2, 0, 1, 2 })
        {
            await PassAsync(i);
        }
        foreach (var n in _nodes)
        {
            Assert.Null(Text(n, tag));
            Assert.Equal("header", Text(n, "r/team/web\0h"));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Records_and_entries_lost_behind_the_stores_back_are_restored_by_verification()
    {
        await StartAsync(3, replicas: 3);
        const string log = "r/team/db";
        var leader = await LeadAsync(log, 0, 1, 2);
        await leader.AppendAsync(Put("r/team/db\0t\0a", "digest-a"));
        await leader.AppendAsync(Put("r/team/db\0t\0b", "digest-b"));
        await leader.AppendAsync(new RecordBatch().Delete("r/team/db\0t\0a"));
        await leader.AppendAsync(Put("r/team/db\0t\0c", "digest-c"));

        // On node 1: a live record deleted, a deleted one given a value again, and an entry lost.
        N(1).Records.Write(new RecordBatch()
            .Delete("r/team/db\0t\0b")
            .Put("r/team/db\0t\0a", Encoding.UTF8.GetBytes("resurrected"))
            .Delete($"lg/{log}\0e\0{2L:x16}"));
        var pass = await PassAsync(1, verify: true);

        Assert.Equal(2, pass.RecordsFixed);
        Assert.Equal("digest-b", Text(N(1), "r/team/db\0t\0b"));
        Assert.Null(Text(N(1), "r/team/db\0t\0a"));
        Assert.True(RecordStore.IsTombstone(N(1).Records.GetRaw("r/team/db\0t\0a")));
        Assert.NotNull(N(1).Records.GetRaw($"lg/{log}\0e\0{2L:x16}"));
        Assert.Equal(0, (await PassAsync(1, verify: true)).RecordsFixed);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_blob_on_one_owner_is_copied_to_the_others_verified()
    {
        await StartAsync(3, replicas: 3);
        var (bytes, digest) = Blob(300 << 10, 1);
        var (small, smallDigest) = Blob(1000, 2);
        await N(0).Blobs.WriteBlobAsync(digest, new MemoryStream(bytes), bytes.Length, default);
        await N(0).Blobs.WriteBlobAsync(smallDigest, new MemoryStream(small), small.Length, default);

        Assert.Equal(2, (await PassAsync(0)).BlobsUnderReplicated);
        var pulled = await PassAsync(1);
        Assert.Equal(2, pulled.BlobsPulled);
        Assert.Equal(bytes.Length + small.Length, pulled.BytesMoved);
        await PassAsync(2);
        foreach (var n in _nodes)
        {
            Assert.Equal(bytes, await ReadAsync(n, digest));
            Assert.Equal(small, await ReadAsync(n, smallDigest));
        }
        Assert.Equal(0, (await PassAsync(0)).BlobsUnderReplicated);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_copy_on_a_node_that_does_not_own_it_goes_to_every_owner_and_then_leaves_that_node()
    {
        await StartAsync(4, replicas: 3);
        // A blob whose three owners are not node 3: node 3 holds it as a hinted copy would be held.
        (byte[] Bytes, Digest Digest) blob;
        var seed = 0;
        do
        {
            blob = Blob(100 << 10, seed++);
        }
        while (RendezvousPlacement.Owners(_view, Shards.OfDigest(blob.Digest), 3).Any(o => o.NodeId == "node-3"));
        await N(3).Blobs.WriteBlobAsync(blob.Digest, new MemoryStream(blob.Bytes), blob.Bytes.Length, default);
        var owner = _nodes.First(n => n.Id != "node-3");

        // One owner down (marked so in the view): the copy goes to the two others and stays here.
        Publish(owner.Id, NodeState.Down);
        var pending = await PassAsync(3);
        Assert.Equal(1, pending.HintsPending);
        Assert.Equal(0, pending.BlobsDropped);
        Assert.NotNull(await ReadAsync(N(3), blob.Digest));
        Assert.Equal(2, _nodes.Count(n => n != owner && n.Id != "node-3" && n.Blobs.Holds(blob.Digest)));

        // It comes back: the copy goes home and leaves node 3.
        Publish(owner.Id, NodeState.Active);
        var home = await PassAsync(3);
        Assert.Equal(0, home.HintsPending);
        Assert.Equal(1, home.BlobsDropped);
        Assert.False(N(3).Blobs.Holds(blob.Digest));
        foreach (var n in _nodes.Where(n => n.Id != "node-3"))
        {
            Assert.Equal(blob.Bytes, await ReadAsync(n, blob.Digest));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_log_forgotten_by_the_others_is_forgotten_by_the_owner_that_missed_it_and_never_copied_back()
    {
        await StartAsync(3, replicas: 3);
        const string log = "u/0123456789abcdef";
        var leader = await LeadAsync(log, 0, 1, 2);
        await leader.AppendAsync(Put("u/0123456789abcdef", "session"));
        await leader.AppendAsync(new RecordBatch().Delete("u/0123456789abcdef"));
        // Node 2 misses the forget (it was down).
        var forget = new Wharf.Contracts.Protos.Records.ForgetRequest { Log = log, Ballot = leader.Ballot };
        N(0).Replica.Forget(forget);
        N(1).Replica.Forget(forget);

        var pass = await PassAsync(2);
        Assert.Equal(1, pass.LogsForgotten);
        foreach (var i in new[] { 0, 1, 2 })
        {
            var again = await PassAsync(i);
            Assert.Equal(0, again.LogEntriesPulled);
            Assert.Equal(0, again.LogsHeld);
        }
        foreach (var n in _nodes)
        {
            Assert.Equal(0, n.Replica.State(log).Committed);
            Assert.Null(n.Records.GetRaw($"lg/{log}\0e\0{1L:x16}"));
            Assert.NotNull(n.Records.GetRaw($"lg/{log}\0s"));
        }

        // Past the retention the markers go too.
        foreach (var n in _nodes)
        {
            n.Options.Repair.ForgottenRetention = TimeSpan.Zero;
            await n.Repair.RunPassAsync(false, TestContext.Current.CancellationToken);
            Assert.Empty(n.Records.Scan($"lg/{log}\0", null, 10, tombstones: true));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_joining_node_syncs_the_logs_of_the_shards_it_gains_reports_and_the_displaced_owner_drops_them_after_the_transition()
    {
        await StartAsync(4, replicas: 3);
        Publish("node-3", NodeState.Joining);
        var joined = _view with { Nodes = [.. _view.Nodes.Select(n => n with { State = NodeState.Active })] };
        // A repository that node 3 owns once it is Active, and the owner it displaces.
        var repo = Enumerable.Range(0, 10_000).Select(i => $"team/r{i}")
            .First(r => RendezvousPlacement.Owners(joined, Shards.OfRepository(r), 3).Any(o => o.NodeId == "node-3"));
        var log = $"r/{repo}";
        var before = RendezvousPlacement.Owners(_view, Shards.OfRepository(repo), 3).Select(o => int.Parse(o.NodeId[5..])).ToArray();
        var displaced = before.Single(i => !RendezvousPlacement.Owners(joined, Shards.OfRepository(repo), 3).Any(o => o.NodeId == $"node-{i}"));
        // Written to two of the three old owners only, the displaced one among them; the last entry stays accepted-only
        // on the follower (its commit notice never comes).
        var writers = new[] { displaced }.Concat(before.Where(i => i != displaced).Take(1)).ToArray();
        var leader = await LeadAsync(log, writers);
        await leader.AppendAsync(Put($"{log}\0t\0v1", "digest-1"));
        await leader.AppendAsync(Put($"{log}\0t\0v2", "digest-2"));

        Publish("node-3", NodeState.Active, transition: true);
        var transitionEpoch = _view.TransitionEpoch;
        Assert.False(await _reports.IsSyncedAsync(transitionEpoch, "node-3", default));
        var synced = await PassAsync(3);
        Assert.Equal(transitionEpoch, synced.SyncedTransition);
        Assert.True(await _reports.IsSyncedAsync(transitionEpoch, "node-3", default));
        Assert.Equal("digest-1", Text(N(3), $"{log}\0t\0v1"));
        Assert.True(N(3).Replica.State(log).Last >= 2);

        // The transition ends; the displaced owner hands the log to the new owners and drops it.
        foreach (var i in new[] { 0, 1, 2, 3 })
        {
            await PassAsync(i);
        }
        Publish(_view with { Epoch = _view.Epoch + 1, Previous = null });
        foreach (var i in new[] { 0, 1, 2, 3 })
        {
            await PassAsync(i);
        }
        var dropped = await PassAsync(displaced);
        Assert.Null(N(displaced).Records.GetRaw($"{log}\0t\0v2"));
        Assert.Equal(0, N(displaced).Replica.State(log).Committed);
        foreach (var owner in RendezvousPlacement.Owners(_view, Shards.OfRepository(repo), 3))
        {
            Assert.Equal("digest-2", Text(_nodes.Single(n => n.Id == owner.NodeId), $"{log}\0t\0v2"));
        }
        Assert.Equal(0, dropped.LogsPendingHandOff);
    }

    [Fact(Timeout = 60_000)]
    public async Task While_owners_move_a_leader_needs_a_write_quorum_of_the_old_owners_and_of_the_new()
    {
        await StartAsync(4, replicas: 3);
        var peers = new[] { 0, 3 }.Select(i => (IReplicaPeer)new LocalReplicaPeer(N(i).Id, N(i).Replica)).ToList();
        // Old owners 0, 1, 2 and new owners 0, 1, 3; nodes 1 and 2 are down: the new owners have two, the old only one.
        IReadOnlyList<(IReadOnlyCollection<string>, int)> quorums = [(["node-0", "node-1", "node-3"], 2), (["node-0", "node-1", "node-2"], 2)];
        var joint = new LogLeader("r/team/joint", "node-0", peers, 2, Fast, viewEpoch: 1, quorums: quorums);
        await Assert.ThrowsAsync<LogUnavailableException>(() => joint.RecoverAsync(TestContext.Current.CancellationToken));

        // The same two nodes are enough for a leader of the new owners alone.
        var single = new LogLeader("r/team/joint", "node-0", peers, 2, Fast, viewEpoch: 1, quorums: [(["node-0", "node-1", "node-3"], 2)]);
        await single.RecoverAsync(TestContext.Current.CancellationToken);
        await single.AppendAsync(Put("r/team/joint\0h", "header"));
        Assert.Equal("header", Text(N(3), "r/team/joint\0h"));
    }
}
