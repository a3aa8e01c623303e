using System.Collections.Concurrent;
using Grpc.Net.Client;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Gateway.Bytes;
using Wharf.Membership.Topology;

namespace Wharf.Silo.Maintenance;

/// <summary>Other nodes that may hold a blob, best first: where the scrubber fetches a good copy from.</summary>
public interface IBlobPeers
{
    IEnumerable<(string NodeId, IByteService Bytes)> HoldersOf(Digest digest);
}

/// <summary>
/// The digest's owners in the current placement view, then the rest of its ranking (where hinted copies sit),
/// skipping this node and nodes without a byte service (the all-in-one has none: it has no peers).
/// </summary>
public sealed class TopologyBlobPeers(TopologyFeed topology, NodeIdentity self) : IBlobPeers, IDisposable
{
    private readonly ConcurrentDictionary<string, (string Endpoint, GrpcChannel Channel, GrpcByteService Service)> _channels = new(StringComparer.Ordinal);

    public IEnumerable<(string NodeId, IByteService Bytes)> HoldersOf(Digest digest)
    {
        var view = topology.Current;
        var shard = Shards.OfDigest(digest);
        var owners = RendezvousPlacement.Owners(view, shard, view.Replicas);
        var order = owners.Concat(RendezvousPlacement.Rank(view.Nodes, shard).Where(n => !owners.Contains(n)));
        foreach (var node in order)
        {
            if (node.NodeId != self.Id && node.State != NodeState.Removed && !string.IsNullOrEmpty(node.ByteEndpoint))
            {
                yield return (node.NodeId, Service(node));
            }
        }
    }

    private GrpcByteService Service(PlacementNode node) =>
        _channels.AddOrUpdate(
            node.NodeId,
            _ => Connect(node.ByteEndpoint),
            (_, existing) =>
            {
                if (existing.Endpoint == node.ByteEndpoint)
                {
                    return existing;
                }
                existing.Channel.Dispose();
                return Connect(node.ByteEndpoint);
            }).Service;

    private static (string, GrpcChannel, GrpcByteService) Connect(string endpoint)
    {
        var channel = GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = Wharf.Membership.Security.PeerCalls.Handler(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(3), PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) }),
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            MaxReconnectBackoff = TimeSpan.FromSeconds(2),
        });
        return (endpoint, channel, new GrpcByteService(channel));
    }

    public void Dispose()
    {
        foreach (var (_, channel, _) in _channels.Values)
        {
            channel.Dispose();
        }
        _channels.Clear();
    }
}
