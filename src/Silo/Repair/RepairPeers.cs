using System.Collections.Concurrent;
using Grpc.Net.Client;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Placement;
using Wharf.Contracts.Protos.Records;
using Wharf.Gateway.Bytes;

namespace Wharf.Silo.Repair;

/// <summary>Another silo as repair sees it: its summaries, its log replica and its byte service, on its byte port.</summary>
public sealed record RepairPeer(string NodeId, Contracts.Protos.Repair.Repair.RepairClient Repair, Records.RecordsClient Records, IByteService Bytes);

/// <summary>Where repair reaches other silos: one HTTP/2 channel per node's byte endpoint, replaced when it moves.</summary>
public interface IRepairPeers
{
    RepairPeer? Peer(PlacementNode node);
}

public sealed class RepairPeers : IRepairPeers, IDisposable
{
    private readonly ConcurrentDictionary<string, (string Endpoint, GrpcChannel Channel, RepairPeer Peer)> _peers = new(StringComparer.Ordinal);

    public RepairPeer? Peer(PlacementNode node)
    {
        if (string.IsNullOrEmpty(node.ByteEndpoint))
        {
            return null;
        }
        return _peers.AddOrUpdate(
            node.NodeId,
            _ => Connect(node),
            (_, existing) =>
            {
                if (existing.Endpoint == node.ByteEndpoint)
                {
                    return existing;
                }
                existing.Channel.Dispose();
                return Connect(node);
            }).Peer;
    }

    private static (string, GrpcChannel, RepairPeer) Connect(PlacementNode node)
    {
        var channel = GrpcChannel.ForAddress(node.ByteEndpoint, new GrpcChannelOptions
        {
            HttpHandler = Wharf.Membership.Security.PeerCalls.Handler(new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = TimeSpan.FromSeconds(3),
                InitialHttp2StreamWindowSize = 4 * 1024 * 1024,
                PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            }),
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            MaxSendMessageSize = 64 * 1024 * 1024,
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(200),
            MaxReconnectBackoff = TimeSpan.FromSeconds(2),
        });
        return (node.ByteEndpoint, channel, new RepairPeer(
            node.NodeId,
            new Contracts.Protos.Repair.Repair.RepairClient(channel),
            new Records.RecordsClient(channel),
            new GrpcByteService(channel)));
    }

    public void Dispose()
    {
        foreach (var (_, channel, _) in _peers.Values)
        {
            channel.Dispose();
        }
        _peers.Clear();
    }
}
