using Grpc.Core;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Contracts.Protos.Records;
using Wharf.Contracts.Protos.Repair;
using Wharf.Membership.Topology;
using Wharf.Silo.Maintenance;
using Wharf.Silo.Observability;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Repair;

/// <summary>What one repair pass on this node saw and did.</summary>
public sealed record RepairPass(
    DateTimeOffset Started,
    DateTimeOffset Completed,
    long ViewEpoch,
    int Peers,
    int PeersUnreachable,
    long LogsHeld,
    long LogsUnderReplicated,
    long LogEntriesPulled,
    long LogsForgotten,
    long BlobsHeld,
    long BytesHeld,
    long BlobsUnderReplicated,
    long BlobsPulled,
    long BlobsHandedOff,
    long BlobsDropped,
    long HintsPending,
    long BytesMoved,
    long Queue,
    long RecordsChecked,
    long RecordsFixed,
    long LogsDropped = 0,
    long LogsPendingHandOff = 0,
    long SyncedTransition = 0);

/// <summary>
/// Continuous repair on one silo (DESIGN principle 6; docs/architecture.md "Repair"). Each pass:
/// <list type="number">
/// <item>builds this node's inventory: its logs and blobs grouped by shard, a summary hash per shard;</item>
/// <item>with every other owning node, compares the summaries of the shards both own; the peer lists what it holds in
///   each shard that differs, and this node pulls what it lacks: committed log entries (final on every owner, so they
///   apply without a leader) and blobs (verified against their digest as they are written). A log the peer forgot
///   (a finished upload) is forgotten here too, never copied back. What the peer lacks it pulls on its own pass;</item>
/// <item>hands off blob copies in shards this node does not own (hinted copies, bytes committed where the upload's
///   owners were, a shard that moved) to the digest's owners, and drops its copy once every owner holds a verified one;</item>
/// <item>every <see cref="RepairOptions.VerifyInterval"/>, re-derives each log's records from its entries and rewrites
///   any that differ (a missing entry is fetched from another owner first).</item>
/// </list>
/// Blob bytes moved are paced to <see cref="RepairOptions.BytesPerSecond"/>.
/// </summary>
public sealed class AntiEntropy(
    LogReplica replica,
    BlobStore blobs,
    TopologyFeed topology,
    NodeIdentity self,
    IRepairPeers peers,
    RepairMetrics metrics,
    WharfOptions options,
    ILogger<AntiEntropy> logger,
    TransitionReports? reports = null) : BackgroundService
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _passGate = new(1, 1);
    private readonly SemaphoreSlim _inventoryGate = new(1, 1);
    private volatile ShardInventory? _inventory;
    private volatile RepairPass? _lastPass;
    private DateTimeOffset _lastVerify = DateTimeOffset.MinValue;
    private long _totalBytesMoved;
    private long _totalCopies;

    public RepairPass? LastPass => _lastPass;

    public long TotalBytesMoved => Interlocked.Read(ref _totalBytesMoved);

    public long TotalCopies => Interlocked.Read(ref _totalCopies);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var repair = options.Repair;
        if (!repair.Enabled)
        {
            return;
        }
        await Task.Delay(repair.StartDelay, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var pass = await RunPassAsync(verify: null, stoppingToken);
                if (pass.LogEntriesPulled + pass.BlobsPulled + pass.BlobsHandedOff + pass.BlobsDropped + pass.RecordsFixed + pass.LogsForgotten > 0
                    || pass.LogsUnderReplicated + pass.BlobsUnderReplicated + pass.HintsPending > 0)
                {
                    logger.LogInformation(
                        "repair pass: {LogsUnder} logs and {BlobsUnder} blobs under-replicated, {Hints} hints pending; pulled {Entries} log entries and {Blobs} blobs, handed off {HandedOff}, dropped {Dropped}, {Moved} bytes moved, {Fixed} records fixed, {Unreachable}/{Peers} peers unreachable",
                        pass.LogsUnderReplicated, pass.BlobsUnderReplicated, pass.HintsPending, pass.LogEntriesPulled, pass.BlobsPulled,
                        pass.BlobsHandedOff, pass.BlobsDropped, pass.BytesMoved, pass.RecordsFixed, pass.PeersUnreachable, pass.Peers);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "repair pass failed");
            }
            // The next pass after the interval, or sooner when the view changes (owners may have moved: a shard to
            // sync, a transition ended, a node draining), once the change had time to reach every node.
            var changed = topology.Changed;
            if (await Task.WhenAny(Task.Delay(repair.Interval, stoppingToken), changed) == changed)
            {
                await Task.Delay(repair.TransitionSettle, stoppingToken);
            }
        }
    }

    /// <summary>Runs one pass now (after any pass in progress); <paramref name="verify"/> null: when it is due.</summary>
    public async Task<RepairPass> RunPassAsync(bool? verify, CancellationToken ct)
    {
        await _passGate.WaitAsync(ct);
        try
        {
            return await PassAsync(verify ?? DateTimeOffset.UtcNow - _lastVerify >= options.Repair.VerifyInterval, ct);
        }
        finally
        {
            _passGate.Release();
        }
    }

    private sealed class Tally
    {
        public readonly HashSet<string> LogsUnder = new(StringComparer.Ordinal);
        public readonly HashSet<string> BlobsUnder = new(StringComparer.Ordinal);
        public int Unreachable;
        public long EntriesPulled, Forgotten, BlobsPulled, HandedOff, Dropped, HintsPending, BytesMoved, Queue, RecordsChecked, RecordsFixed, LogsDropped, LogsPending, Synced;
    }

    private async Task<RepairPass> PassAsync(bool verify, CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        var view = topology.Current;
        var ownership = ShardOwnership.Of(view);
        var inventory = await InventoryAsync(TimeSpan.Zero, ct);
        var pacer = new ReadPacer(options.Repair.BytesPerSecond);
        var tally = new Tally();
        if (view.InTransition)
        {
            await SyncTransitionAsync(view, tally, ct);
        }
        var others = view.Nodes.Where(n => n.NodeId != self.Id && RendezvousPlacement.Owns(n)).ToList();
        foreach (var node in others)
        {
            var shared = Enumerable.Range(0, Shards.Count).Where(s => ownership.CoOwn(s, self.Id, node.NodeId)).ToList();
            if (shared.Count == 0)
            {
                continue;
            }
            var peer = peers.Peer(node);
            try
            {
                if (peer is null)
                {
                    throw new InvalidOperationException($"node {node.NodeId} has no byte endpoint");
                }
                await CompareLogsAsync(peer, view.Epoch, inventory, shared, tally, ct);
                await CompareBlobsAsync(peer, view.Epoch, inventory, shared, pacer, tally, ct);
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException or HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                tally.Unreachable++;
                logger.LogDebug("repair: node {Node} did not answer: {Error}", node.NodeId, e.Message);
                // Nothing shared with an owner that cannot be reached is known to be on it.
                foreach (var s in shared)
                {
                    foreach (var log in inventory.Logs.GetValueOrDefault(s) ?? [])
                    {
                        if (!log.Forgotten)
                        {
                            tally.LogsUnder.Add(log.Log);
                        }
                    }
                    foreach (var blob in inventory.Blobs.GetValueOrDefault(s) ?? [])
                    {
                        tally.BlobsUnder.Add(blob.Digest);
                    }
                }
            }
        }
        await HandOffAsync(view, ownership, inventory, pacer, tally, ct);
        if (!view.InTransition)
        {
            await HandOffLogsAsync(view, ownership, inventory, tally, ct);
        }
        var cutoff = (DateTimeOffset.UtcNow - options.Repair.ForgottenRetention).ToUnixTimeMilliseconds();
        foreach (var log in inventory.Logs.Values.SelectMany(l => l))
        {
            if (log.Forgotten && log.ForgottenUnixMs <= cutoff)
            {
                replica.PurgeForgotten(log.Log, cutoff);
            }
        }
        if (verify)
        {
            await VerifyRecordsAsync(view, ownership, inventory, tally, ct);
            _lastVerify = DateTimeOffset.UtcNow;
        }
        // Hold the counts of the node as it is now, not as it was at the start of the pass.
        var after = await InventoryAsync(TimeSpan.Zero, ct);
        if (reports is not null && !view.InTransition && view.Find(self.Id)?.State == NodeState.Draining && after.LogCount == 0 && after.BlobCount == 0)
        {
            await reports.ReportDrainedAsync(self.Id, ct);
            logger.LogInformation("drain: node {Node} holds no logs and no blobs any more; every key is on its owners", self.Id);
        }
        var pass = new RepairPass(
            started, DateTimeOffset.UtcNow, view.Epoch, others.Count, tally.Unreachable,
            after.LogCount, tally.LogsUnder.Count, tally.EntriesPulled, tally.Forgotten,
            after.BlobCount, after.BlobBytes, tally.BlobsUnder.Count, tally.BlobsPulled, tally.HandedOff, tally.Dropped, tally.HintsPending,
            tally.BytesMoved, tally.Queue, tally.RecordsChecked, tally.RecordsFixed, tally.LogsDropped, tally.LogsPending, tally.Synced);
        _lastPass = pass;
        metrics.PassCompleted(pass);
        return pass;
    }

    /// <summary>This node's inventory, rebuilt when older than <paramref name="maxAge"/> or built under another view.</summary>
    public async Task<ShardInventory> InventoryAsync(TimeSpan maxAge, CancellationToken ct)
    {
        var epoch = topology.Current.Epoch;
        var current = _inventory;
        if (current is not null && current.Epoch == epoch && DateTimeOffset.UtcNow - current.Built <= maxAge)
        {
            return current;
        }
        await _inventoryGate.WaitAsync(ct);
        try
        {
            current = _inventory;
            if (current is not null && current.Epoch == epoch && DateTimeOffset.UtcNow - current.Built <= maxAge)
            {
                return current;
            }
            var built = await Task.Run(() => ShardInventory.Build(replica, blobs, epoch), ct);
            _inventory = built;
            return built;
        }
        finally
        {
            _inventoryGate.Release();
        }
    }

    private async Task CompareLogsAsync(RepairPeer peer, long epoch, ShardInventory inventory, List<int> shared, Tally tally, CancellationToken ct)
    {
        if (await CompareSummariesAsync(peer, Kind.Logs, epoch, inventory.LogHashes, shared, ct) is not { } reply)
        {
            return;
        }
        foreach (var listing in reply.Shards)
        {
            var mine = (inventory.Logs.GetValueOrDefault(listing.Shard) ?? []).ToDictionary(l => l.Log, StringComparer.Ordinal);
            var theirs = listing.Logs.ToDictionary(l => l.Log, StringComparer.Ordinal);
            foreach (var t in listing.Logs)
            {
                var m = mine.GetValueOrDefault(t.Log);
                if (t.Forgotten)
                {
                    if (m is { Forgotten: false } && replica.ForgetLocally(t.Log))
                    {
                        tally.Forgotten++;
                    }
                    continue;
                }
                if (m is { Forgotten: true })
                {
                    continue; // The peer forgets it on its own pass.
                }
                // This replica as it is now: an earlier peer of this pass, or a leader, may have moved it on.
                if (replica.State(t.Log).Committed < t.Committed)
                {
                    tally.EntriesPulled += await PullEntriesAsync(peer, t.Log, t.Committed, ct);
                    if (replica.State(t.Log).Committed < t.Committed)
                    {
                        tally.Queue++;
                    }
                }
            }
            foreach (var m in mine.Values)
            {
                if (!m.Forgotten && (!theirs.TryGetValue(m.Log, out var t) || (!t.Forgotten && t.Committed < m.Committed)))
                {
                    tally.LogsUnder.Add(m.Log);
                }
            }
        }
    }

    /// <summary>
    /// Sends a peer the summaries of the shared shards this node holds something in; its listing of the shards that
    /// differ, or null when the peer follows another view epoch (compared again next pass).
    /// </summary>
    private async Task<CompareReply?> CompareSummariesAsync(
        RepairPeer peer, Kind kind, long epoch, Dictionary<int, Google.Protobuf.ByteString> hashes, List<int> shared, CancellationToken ct)
    {
        var request = new CompareRequest { Kind = kind, Node = self.Id, ViewEpoch = epoch };
        foreach (var s in shared)
        {
            if (hashes.TryGetValue(s, out var hash))
            {
                request.Shards.Add(new ShardSummary { Shard = s, Hash = hash });
            }
        }
        var reply = await peer.Repair.CompareAsync(request, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
        return reply.ViewMismatch ? null : reply;
    }

    /// <summary>Pulls the committed entries of a log this replica lacks, up to <paramref name="upTo"/>, from a peer; returns how many it committed.</summary>
    private async Task<long> PullEntriesAsync(RepairPeer peer, string log, long upTo, CancellationToken ct)
    {
        long pulled = 0;
        while (true)
        {
            // From this replica's commit point as it is now (a leader may be committing here too).
            var have = replica.State(log).Committed;
            if (have >= upTo)
            {
                return pulled;
            }
            var fetched = await peer.Records.FetchAsync(
                new FetchRequest { Log = log, From = have + 1, To = upTo }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
            if (fetched.Entries.Count == 0)
            {
                return pulled;
            }
            var applied = replica.ApplyCommitted(log, fetched.Entries);
            if (applied == 0 && replica.State(log).Committed <= have)
            {
                return pulled;
            }
            pulled += applied;
            metrics.Copied.Add(applied, new KeyValuePair<string, object?>("kind", "log"));
            Interlocked.Add(ref _totalCopies, applied);
        }
    }

    private async Task CompareBlobsAsync(RepairPeer peer, long epoch, ShardInventory inventory, List<int> shared, ReadPacer pacer, Tally tally, CancellationToken ct)
    {
        if (await CompareSummariesAsync(peer, Kind.Blobs, epoch, inventory.BlobHashes, shared, ct) is not { } reply)
        {
            return;
        }
        foreach (var listing in reply.Shards)
        {
            var mine = (inventory.Blobs.GetValueOrDefault(listing.Shard) ?? []).Select(b => b.Digest).ToHashSet(StringComparer.Ordinal);
            var theirs = listing.Blobs.Select(b => b.Digest).ToHashSet(StringComparer.Ordinal);
            foreach (var t in listing.Blobs)
            {
                // Held now (another peer of this pass may have supplied it): never fetched twice.
                if (mine.Contains(t.Digest) || !Digest.TryParse(t.Digest, out var digest) || blobs.Holds(digest.Value))
                {
                    continue;
                }
                if (await PullBlobAsync(peer, digest.Value, t.Size, pacer, ct))
                {
                    tally.BlobsPulled++;
                    tally.BytesMoved += t.Size;
                }
                else
                {
                    tally.Queue++;
                    tally.BlobsUnder.Add(t.Digest);
                }
            }
            foreach (var m in mine)
            {
                if (!theirs.Contains(m))
                {
                    tally.BlobsUnder.Add(m);
                }
            }
        }
    }

    private async Task<bool> PullBlobAsync(RepairPeer peer, Digest digest, long size, ReadPacer pacer, CancellationToken ct)
    {
        try
        {
            await using var source = await peer.Bytes.OpenReadAsync(digest, 0, size, ct);
            if (source is null)
            {
                return false;
            }
            await using var paced = new PacedReadStream(source, pacer);
            // Verified against the digest and synced before it is indexed here.
            await blobs.WriteBlobAsync(digest, paced, size, ct);
            Moved(size, "blob");
            return true;
        }
        catch (Exception e) when (e is RpcException or IOException or RegistryException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            logger.LogWarning("repair: copying {Digest} from node {Node} failed: {Error}", digest, peer.NodeId, e.Message);
            return false;
        }
    }

    /// <summary>Blob copies in shards this node does not own go to the shard's owners; once all hold it, this copy goes.</summary>
    private async Task HandOffAsync(PlacementView view, ShardOwnership ownership, ShardInventory inventory, ReadPacer pacer, Tally tally, CancellationToken ct)
    {
        foreach (var (shard, list) in inventory.Blobs)
        {
            if (ownership.Owns(shard, self.Id))
            {
                continue;
            }
            var owners = ownership.Owners(shard).Select(view.Find).OfType<PlacementNode>().ToList();
            foreach (var blob in list)
            {
                if (!Digest.TryParse(blob.Digest, out var parsed))
                {
                    continue;
                }
                var digest = parsed.Value;
                var confirmed = 0;
                foreach (var owner in owners)
                {
                    if (await EnsureOnOwnerAsync(owner, digest, blob.Size, pacer, tally, ct))
                    {
                        confirmed++;
                    }
                }
                // Never fewer copies than before: only when every one of R owners holds a verified copy.
                if (confirmed == owners.Count && owners.Count >= Math.Max(1, view.Replicas))
                {
                    if (blobs.Drop(digest) is not null)
                    {
                        tally.Dropped++;
                        metrics.Dropped.Add(1);
                    }
                }
                else
                {
                    tally.HintsPending++;
                }
            }
        }
    }

    private async Task<bool> EnsureOnOwnerAsync(PlacementNode owner, Digest digest, long size, ReadPacer pacer, Tally tally, CancellationToken ct)
    {
        if (owner.State != NodeState.Active || peers.Peer(owner) is not { } peer)
        {
            return false;
        }
        try
        {
            if (await peer.Bytes.StatAsync(digest, ct) == size)
            {
                return true;
            }
            await using var local = await blobs.OpenReadAsync(digest, 0, size, ct);
            if (local is null)
            {
                return false;
            }
            await using var paced = new PacedReadStream(local, pacer);
            // The owner verifies the bytes against the digest before it indexes them.
            await peer.Bytes.WriteBlobAsync(digest, paced, size, ct);
            tally.HandedOff++;
            tally.BytesMoved += size;
            Moved(size, "handoff");
            return true;
        }
        catch (Exception e) when (e is RpcException or IOException or RegistryException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            logger.LogDebug("repair: handing {Digest} to node {Node} failed: {Error}", digest, owner.NodeId, e.Message);
            return false;
        }
    }

    private void Moved(long size, string kind)
    {
        metrics.Copied.Add(1, new KeyValuePair<string, object?>("kind", kind));
        metrics.BytesMoved.Add(size);
        Interlocked.Add(ref _totalBytesMoved, size);
        Interlocked.Increment(ref _totalCopies);
    }

    /// <summary>Re-derives every log's records from its entries; a missing entry is fetched from another owner first.</summary>
    private async Task VerifyRecordsAsync(PlacementView view, ShardOwnership ownership, ShardInventory inventory, Tally tally, CancellationToken ct)
    {
        foreach (var (shard, logs) in inventory.Logs)
        {
            foreach (var log in logs)
            {
                if (log.Forgotten)
                {
                    continue;
                }
                ct.ThrowIfCancellationRequested();
                var result = replica.Verify(log.Log);
                if (result.MissingEntry > 0)
                {
                    await RestoreEntriesAsync(view, ownership.Owners(shard), log.Log, result.MissingEntry, log.Committed, ct);
                    result = replica.Verify(log.Log);
                    if (result.MissingEntry > 0)
                    {
                        tally.Queue++;
                        logger.LogWarning("repair: entry {Seq} of log {Log} is missing here and no other owner supplied it", result.MissingEntry, log.Log);
                    }
                }
                tally.RecordsChecked += result.Entries;
                if (result.Fixed > 0)
                {
                    tally.RecordsFixed += result.Fixed;
                    metrics.RecordsFixed.Add(result.Fixed);
                    logger.LogWarning("repair: {Count} record(s) of log {Log} differed from its entries and were rewritten", result.Fixed, log.Log);
                }
            }
        }
    }

    private async Task RestoreEntriesAsync(PlacementView view, IReadOnlyList<string> owners, string log, long from, long upTo, CancellationToken ct)
    {
        foreach (var owner in owners)
        {
            if (owner == self.Id || view.Find(owner) is not { } node || peers.Peer(node) is not { } peer)
            {
                continue;
            }
            try
            {
                var next = from;
                while (next <= upTo)
                {
                    var fetched = await peer.Records.FetchAsync(new FetchRequest { Log = log, From = next, To = upTo }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
                    if (fetched.Entries.Count == 0)
                    {
                        break;
                    }
                    replica.RestoreEntries(log, fetched.Entries);
                    next = fetched.Entries[^1].Seq + 1;
                }
                if (next > upTo)
                {
                    return;
                }
            }
            catch (RpcException e)
            {
                logger.LogDebug("repair: fetching entries of {Log} from node {Node} failed: {Error}", log, owner, e.Message);
            }
        }
    }

    private long _syncedTransition;
    private (long Epoch, DateTimeOffset At) _transitionSeen;
    private (long Epoch, List<int> Shards)? _gained;

    /// <summary>
    /// A transition gave this node shards (docs/architecture.md "View changes"): it pulls every log of them from their
    /// previous owners and its co-owners — committed entries, then what the old owners accepted above their commit
    /// point — and reports the transition synced once, for every gained shard, enough previous owners answered that
    /// any write quorum of the old owners is among them (R − W + 1).
    /// </summary>
    private async Task SyncTransitionAsync(PlacementView view, Tally tally, CancellationToken ct)
    {
        if (reports is null || Interlocked.Read(ref _syncedTransition) == view.TransitionEpoch)
        {
            return;
        }
        // Only once every node has had time to see the change (and old owners refuse older leaders' writes).
        if (_transitionSeen.Epoch != view.TransitionEpoch)
        {
            _transitionSeen = (view.TransitionEpoch, DateTimeOffset.UtcNow);
        }
        if (DateTimeOffset.UtcNow - _transitionSeen.At < options.Repair.TransitionSettle)
        {
            return;
        }
        if (_gained is not { } gained || gained.Epoch != view.TransitionEpoch)
        {
            gained = (view.TransitionEpoch, Transitions.GainedShards(view, self.Id).ToList());
            _gained = gained;
        }
        if (gained.Shards.Count > 0 && !await SyncShardsAsync(view, gained.Shards, tally, ct))
        {
            return;
        }
        if (gained.Shards.Count > 0)
        {
            await reports.ReportSyncedAsync(view.TransitionEpoch, self.Id, ct);
            logger.LogInformation("transition {Epoch}: node {Node} synced the {Count} shard(s) it gained", view.TransitionEpoch, self.Id, gained.Shards.Count);
        }
        Interlocked.Exchange(ref _syncedTransition, view.TransitionEpoch);
        tally.Synced = view.TransitionEpoch;
    }

    private async Task<bool> SyncShardsAsync(PlacementView view, List<int> shards, Tally tally, CancellationToken ct)
    {
        var before = view.PreviousView!;
        var replicas = Math.Max(1, view.Replicas);
        var heard = new Dictionary<int, int>();
        var needed = new Dictionary<int, int>();
        var sources = new Dictionary<string, (PlacementNode Node, List<int> Shards)>(StringComparer.Ordinal);
        foreach (var shard in shards)
        {
            var previous = RendezvousPlacement.Owners(before, shard, Math.Max(1, before.Replicas)).Where(n => n.NodeId != self.Id).ToList();
            // Enough old owners that every write quorum they used is among them.
            needed[shard] = Math.Min(previous.Count, Math.Max(1, before.Replicas) - ReplicatedLogs.PreviousQuorum(view) + 1);
            heard[shard] = 0;
            foreach (var node in previous.Concat(RendezvousPlacement.Owners(view, shard, replicas)).Where(n => n.NodeId != self.Id))
            {
                if (!sources.TryGetValue(node.NodeId, out var source))
                {
                    sources[node.NodeId] = source = (view.Find(node.NodeId) ?? node, []);
                }
                if (!source.Shards.Contains(shard))
                {
                    source.Shards.Add(shard);
                }
            }
        }
        foreach (var (nodeId, (node, list)) in sources)
        {
            if (node.State is NodeState.Removed || peers.Peer(node) is not { } peer)
            {
                continue;
            }
            try
            {
                var request = new CompareRequest { Kind = Kind.Logs, Node = self.Id, ViewEpoch = view.Epoch };
                request.ExplicitShards.AddRange(list);
                var reply = await peer.Repair.CompareAsync(request, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
                foreach (var listing in reply.Shards)
                {
                    foreach (var log in listing.Logs)
                    {
                        if (log.Forgotten)
                        {
                            if (replica.ForgetLocally(log.Log))
                            {
                                tally.Forgotten++;
                            }
                            continue;
                        }
                        tally.EntriesPulled += await PullEntriesAsync(peer, log.Log, log.Committed, ct);
                        tally.EntriesPulled += await PullTailAsync(peer, log.Log, ct);
                    }
                }
                foreach (var shard in list)
                {
                    if (RendezvousPlacement.Owners(before, shard, Math.Max(1, before.Replicas)).Any(n => n.NodeId == nodeId))
                    {
                        heard[shard]++;
                    }
                }
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                logger.LogInformation("transition {Epoch}: node {Node} did not answer for the sync of gained shards: {Error}", view.TransitionEpoch, nodeId, e.Message);
            }
        }
        var short_ = heard.Count(h => h.Value < needed[h.Key]);
        if (short_ > 0)
        {
            logger.LogWarning("transition {Epoch}: {Short} gained shard(s) not yet synced from enough previous owners; trying again", view.TransitionEpoch, short_);
            return false;
        }
        return true;
    }

    /// <summary>What a previous owner accepted above its commit point, taken here as late accepts.</summary>
    private async Task<long> PullTailAsync(RepairPeer peer, string log, CancellationToken ct)
    {
        var from = replica.State(log).Committed + 1;
        var fetched = await peer.Records.FetchAsync(new FetchRequest { Log = log, From = from, To = long.MaxValue }, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
        return fetched.Entries.Count == 0 ? 0 : replica.AcceptLate(log, fetched.Entries);
    }

    /// <summary>
    /// Logs in shards this node no longer owns (a shard moved and the transition ended, or this node is draining) are
    /// dropped once every owner holds them at least as far as committed here (or forgot them).
    /// </summary>
    private async Task HandOffLogsAsync(PlacementView view, ShardOwnership ownership, ShardInventory inventory, Tally tally, CancellationToken ct)
    {
        var lost = inventory.Logs.Keys.Where(shard => !ownership.Owns(shard, self.Id)).ToList();
        if (lost.Count == 0)
        {
            return;
        }
        // One question per owner: what it holds in every one of these shards it owns.
        var answers = new Dictionary<(string Node, int Shard), Dictionary<string, LogSummary>>();
        foreach (var group in lost.SelectMany(shard => ownership.Owners(shard).Select(o => (Owner: o, Shard: shard))).GroupBy(x => x.Owner, StringComparer.Ordinal))
        {
            if (view.Find(group.Key) is not { State: NodeState.Active } owner || peers.Peer(owner) is not { } peer)
            {
                continue;
            }
            try
            {
                var request = new CompareRequest { Kind = Kind.Logs, Node = self.Id, ViewEpoch = view.Epoch };
                request.ExplicitShards.AddRange(group.Select(x => x.Shard));
                var reply = await peer.Repair.CompareAsync(request, deadline: DateTime.UtcNow + CallTimeout, cancellationToken: ct);
                foreach (var listing in reply.Shards)
                {
                    answers[(group.Key, listing.Shard)] = listing.Logs.ToDictionary(l => l.Log, StringComparer.Ordinal);
                }
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                logger.LogDebug("repair: node {Node} did not answer for the hand-off of {Count} shard(s): {Error}", group.Key, group.Count(), e.Message);
            }
        }
        foreach (var shard in lost)
        {
            var owners = ownership.Owners(shard);
            foreach (var mine in inventory.Logs[shard])
            {
                var confirmed = owners.Count(owner =>
                    answers.TryGetValue((owner, shard), out var theirs)
                    // An owner holds it at least as far as committed here, or forgot it; a marker the owner never had
                    // (or purged) leaves nothing to keep here.
                    && (mine.Forgotten || (theirs.TryGetValue(mine.Log, out var t) && (t.Forgotten || t.Committed >= mine.Committed))));
                if (owners.Count >= Math.Max(1, view.Replicas) && confirmed == owners.Count)
                {
                    replica.Drop(mine.Log);
                    tally.LogsDropped++;
                }
                else if (!mine.Forgotten)
                {
                    tally.LogsPending++;
                }
            }
        }
    }

    /// <summary>The peer side of a comparison: what this node holds in each shared shard whose summary differs.</summary>
    public async Task<CompareReply> CompareAsync(CompareRequest request, CancellationToken ct)
    {
        var view = topology.Current;
        if (request.ExplicitShards.Count > 0)
        {
            // Fresh enough for a sync that starts seconds after a change (TransitionSettle), and never ahead of what
            // is held: commit points only grow, so an older answer can only delay a hand-off, never hasten it.
            var held = await InventoryAsync(TimeSpan.FromSeconds(1), ct);
            var listed = new CompareReply { ViewEpoch = view.Epoch };
            foreach (var s in request.ExplicitShards.Distinct())
            {
                var listing = new ShardListing { Shard = s };
                if (request.Kind == Kind.Logs)
                {
                    listing.Logs.AddRange(held.Logs.GetValueOrDefault(s) ?? []);
                }
                else
                {
                    listing.Blobs.AddRange(held.Blobs.GetValueOrDefault(s) ?? []);
                }
                listed.Shards.Add(listing);
            }
            return listed;
        }
        if (view.Epoch != request.ViewEpoch)
        {
            return new CompareReply { ViewMismatch = true, ViewEpoch = view.Epoch };
        }
        var ownership = ShardOwnership.Of(view);
        // Shared between the passes of every peer asking at about the same time.
        var maxAge = TimeSpan.FromTicks(Math.Clamp(options.Repair.Interval.Ticks / 4, TimeSpan.FromMilliseconds(200).Ticks, TimeSpan.FromSeconds(10).Ticks));
        var inventory = await InventoryAsync(maxAge, ct);
        var theirs = request.Shards.ToDictionary(s => s.Shard, s => s.Hash);
        var reply = new CompareReply { ViewEpoch = view.Epoch };
        var hashes = request.Kind == Kind.Logs ? inventory.LogHashes : inventory.BlobHashes;
        for (var s = 0; s < Shards.Count; s++)
        {
            if (!ownership.CoOwn(s, self.Id, request.Node))
            {
                continue;
            }
            var mine = hashes.GetValueOrDefault(s);
            var other = theirs.GetValueOrDefault(s);
            if (mine is null && other is null || mine is not null && other is not null && mine.Equals(other))
            {
                continue;
            }
            var listing = new ShardListing { Shard = s };
            if (request.Kind == Kind.Logs)
            {
                listing.Logs.AddRange(inventory.Logs.GetValueOrDefault(s) ?? []);
            }
            else
            {
                listing.Blobs.AddRange(inventory.Blobs.GetValueOrDefault(s) ?? []);
            }
            reply.Shards.Add(listing);
        }
        return reply;
    }
}

/// <summary>This node's side of anti-entropy on gRPC (wharf.repair.v1), on the byte port.</summary>
public sealed class RepairServiceEndpoint(AntiEntropy antiEntropy) : Contracts.Protos.Repair.Repair.RepairBase
{
    public override Task<CompareReply> Compare(CompareRequest request, ServerCallContext context) =>
        antiEntropy.CompareAsync(request, context.CancellationToken);
}
