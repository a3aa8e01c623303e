using System.Collections.Concurrent;
using Grpc.Net.Client;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Placement;
using Wharf.Contracts.Protos.Records;
using Wharf.Membership.Topology;

namespace Wharf.Silo.Replication;

/// <summary>
/// Creates the leader of a log on this node over the placement view: the log's owners are the first R nodes of its
/// shard (DESIGN principle 3), reached in-process for this node and over gRPC for the others; W comes from the view.
/// </summary>
public sealed class ReplicatedLogs(TopologyFeed topology, LogReplica replica, string selfNodeId, LeaderTimings timings, Observability.LogMetrics? metrics = null) : IDisposable
{
    private readonly ConcurrentDictionary<string, (GrpcChannel Channel, GrpcReplicaPeer Peer)> _remote = new(StringComparer.Ordinal);

    /// <summary>
    /// A leader for the log; call <see cref="LogLeader.RecoverAsync"/> before using it. While owners move (the view is in
    /// transition) it writes to the old owners and the new, W of each (joint quorums).
    /// </summary>
    /// <param name="succeeding">It replaces an outdated leader of the same activation (see <see cref="IsOutdated"/>).</param>
    public LogLeader Lead(string log, bool succeeding = false)
    {
        var shard = ShardOfLog(log) ?? throw new ArgumentException($"'{log}' is not a log id (r/…, u/…, c/…, a/access)", nameof(log));
        var view = topology.Current;
        var (owners, quorums) = Plan(view, shard);
        var peers = new List<IReplicaPeer>(owners.Count);
        foreach (var owner in owners)
        {
            if (owner.NodeId == selfNodeId)
            {
                peers.Add(new LocalReplicaPeer(selfNodeId, replica));
            }
            else if (!string.IsNullOrEmpty(owner.ByteEndpoint))
            {
                peers.Add(Remote(owner));
            }
        }
        return new LogLeader(log, selfNodeId, peers, Math.Max(1, view.WriteQuorum), timings, metrics, view.Epoch, quorums, succeeding);
    }

    /// <summary>The nodes a leader writes to, and its quorum sets when owners are moving (new owners, old owners).</summary>
    private static (List<PlacementNode> Owners, IReadOnlyList<(IReadOnlyCollection<string> Owners, int Quorum)>? Quorums) Plan(PlacementView view, int shard)
    {
        var owners = RendezvousPlacement.Owners(view, shard, Math.Max(1, view.Replicas)).ToList();
        if (!view.InTransition)
        {
            return (owners, null);
        }
        var before = Transitions.PreviousOwners(view, shard);
        if (before.Select(n => n.NodeId).ToHashSet(StringComparer.Ordinal).SetEquals(owners.Select(n => n.NodeId)))
        {
            return (owners, null);
        }
        IReadOnlyList<(IReadOnlyCollection<string>, int)> quorums =
        [
            (owners.Select(n => n.NodeId).ToList(), Math.Max(1, view.WriteQuorum)),
            (before.Select(n => n.NodeId).ToList(), PreviousQuorum(view)),
        ];
        owners.AddRange(before.Where(b => !owners.Any(o => o.NodeId == b.NodeId)));
        return (owners, quorums);
    }

    /// <summary>
    /// The write quorum of the owners before a transition: W, or a majority of the old R when R changed (any quorum the
    /// old owners used was at least that, so the two meet).
    /// </summary>
    public static int PreviousQuorum(PlacementView view)
    {
        var before = view.PreviousView ?? view;
        var w = Math.Max(1, view.WriteQuorum);
        return before.Replicas == view.Replicas ? w : Math.Min(Math.Max(w, before.Replicas / 2 + 1), Math.Max(1, before.Replicas));
    }

    /// <summary>
    /// Whether a leader no longer matches the placement: an owner told it its view is stale, or the log's owners (or
    /// whether they are moving) differ in the current view from those it writes to. Its activation then makes a new one.
    /// </summary>
    public bool IsOutdated(LogLeader leader)
    {
        if (leader.StaleView)
        {
            return true;
        }
        var view = topology.Current;
        if (view.Epoch == leader.ViewEpoch || ShardOfLog(leader.Log) is not { } shard)
        {
            return false;
        }
        var (owners, quorums) = Plan(view, shard);
        return quorums is not null != leader.Joint || !owners.Select(o => o.NodeId).ToHashSet(StringComparer.Ordinal).SetEquals(leader.Owners);
    }

    /// <summary>Whether this node is among the log's owners (old or new, while they move) in the current view.</summary>
    public bool OwnedHere(string log) =>
        ShardOfLog(log) is { } shard && Plan(topology.Current, shard).Owners.Any(o => o.NodeId == selfNodeId);

    /// <summary>The epoch of the placement view this node follows now.</summary>
    public long CurrentEpoch => topology.Current.Epoch;

    /// <summary>Reads the view from the membership backend now (an owner said ours is stale).</summary>
    public Task RefreshViewAsync(CancellationToken cancellationToken) => topology.RefreshAsync(cancellationToken);

    /// <summary>
    /// The owner side of "writes carry the view epoch": a request chosen by an older view than this node knows is
    /// stale when, in the newer view, this node no longer owns the log's shard (the leader's owners are outdated).
    /// While owners move, a node that owned the shard before the transition still takes requests from leaders made
    /// during it (they write joint quorums), but not from older ones: their writes could land on old owners only
    /// after the new owners synced from them.
    /// </summary>
    public static Func<string, long, bool> StaleViewCheck(TopologyFeed topology, string selfNodeId) => (log, epoch) =>
    {
        var view = topology.Current;
        if (epoch == 0 || view.Epoch <= epoch || ShardOfLog(log) is not { } shard)
        {
            return false;
        }
        if (RendezvousPlacement.Owners(view, shard, Math.Max(1, view.Replicas)).Any(n => n.NodeId == selfNodeId))
        {
            return false;
        }
        return !(view.InTransition && epoch >= view.TransitionEpoch && Transitions.PreviousOwners(view, shard).Any(n => n.NodeId == selfNodeId));
    };

    /// <summary>The one log of the access state (users, robots, teams, policies).</summary>
    public const string AccessLog = "a/access";

    /// <summary>The shard of a log id: <c>r/{repository}</c>, <c>u/{upload id}</c>, <c>c/{catalog shard}</c>, <c>a/access</c>, <c>h/{audit hour}</c>.</summary>
    public static int? ShardOfLog(string log) =>
        log.Length < 2 ? null : log[..2] switch
        {
            "r/" => Shards.OfRepository(log[2..]),
            "u/" => Shards.OfUpload(log[2..]),
            "a/" => log == AccessLog ? Shards.OfAccess() : null,
            "c/" => long.TryParse(log[2..], System.Globalization.CultureInfo.InvariantCulture, out var n) ? Shards.OfCatalogShard(n) : null,
            "h/" => Shards.OfAuditHour(log[2..]),
            _ => null,
        };

    private GrpcReplicaPeer Remote(PlacementNode node) =>
        _remote.AddOrUpdate(
            node.NodeId,
            _ => Connect(node),
            (_, existing) => existing.Peer.Endpoint == node.ByteEndpoint ? existing : Replace(existing, node)).Peer;

    private static (GrpcChannel, GrpcReplicaPeer) Replace((GrpcChannel Channel, GrpcReplicaPeer Peer) old, PlacementNode node)
    {
        old.Channel.Dispose();
        return Connect(node);
    }

    private static (GrpcChannel, GrpcReplicaPeer) Connect(PlacementNode node)
    {
        var channel = GrpcChannel.ForAddress(node.ByteEndpoint, new GrpcChannelOptions
        {
            HttpHandler = Wharf.Membership.Security.PeerCalls.Handler(new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = TimeSpan.FromSeconds(3),
                KeepAlivePingDelay = TimeSpan.FromSeconds(20),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            }),
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            // A node that restarts is reachable again within seconds: reconnect attempts back off to 2 s at most
            // (gRPC's default grows to 120 s, during which every call fails at once with "Error connecting to subchannel").
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(200),
            MaxReconnectBackoff = TimeSpan.FromSeconds(2),
            MaxSendMessageSize = 64 * 1024 * 1024,
        });
        return (channel, new GrpcReplicaPeer(node.NodeId, node.ByteEndpoint, new Records.RecordsClient(channel)));
    }

    public void Dispose()
    {
        foreach (var (channel, _) in _remote.Values)
        {
            channel.Dispose();
        }
    }
}

/// <summary>Another node's replica, over gRPC.</summary>
public sealed class GrpcReplicaPeer(string nodeId, string endpoint, Records.RecordsClient client) : IReplicaPeer
{
    public string NodeId => nodeId;

    public string Endpoint => endpoint;

    public async Task<PrepareReply> PrepareAsync(PrepareRequest request, CancellationToken cancellationToken) =>
        await client.PrepareAsync(request, cancellationToken: cancellationToken);

    public async Task<AcceptReply> AcceptAsync(AcceptRequest request, CancellationToken cancellationToken) =>
        await client.AcceptAsync(request, cancellationToken: cancellationToken);

    public async Task<FetchReply> FetchAsync(FetchRequest request, CancellationToken cancellationToken) =>
        await client.FetchAsync(request, cancellationToken: cancellationToken);

    public async Task<AcceptReply> ForgetAsync(ForgetRequest request, CancellationToken cancellationToken) =>
        await client.ForgetAsync(request, cancellationToken: cancellationToken);
}
