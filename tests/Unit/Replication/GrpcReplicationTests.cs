using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Gateway.Bytes;
using Wharf.Membership.Topology;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;
using ErrorCode = Wharf.Contracts.Oci.ErrorCode;

namespace Wharf.Tests.Unit.Replication;

/// <summary>
/// The same replication over the real transport: three silos' byte services on Kestrel (HTTP/2, 127.0.0.1) behind the
/// gateway's <see cref="TopologyByteRouter"/>, one of which is stopped, as a killed silo is.
/// </summary>
public sealed class GrpcReplicationTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-grpc-replicas-").FullName;
    private readonly List<(WebApplication App, RecordStore Records, BlobStore Store)> _nodes = [];
    private TopologyByteRouter? _router;
    private ReplicaWriter? _writer;
    private ReplicaReader? _reader;
    private NodeHealth _health = new();

    public async ValueTask InitializeAsync()
    {
        var view = new List<PlacementNode>();
        for (var i = 0; i < 3; i++)
        {
            var dir = Path.Combine(_dir, $"node-{i}");
            var records = RecordStore.Open(Path.Combine(dir, "db"));
            var store = new BlobStore(records, dir);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(store);
            var app = builder.Build();
            app.MapGrpcService<ByteServiceEndpoint>();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            _nodes.Add((app, records, store));
            view.Add(new PlacementNode($"node-{i}", NodeState.Active, "", 1.0, address));
        }
        var feed = new TopologyFeed(new PlacementViewStore(null!, "test"), NullLogger<TopologyFeed>.Instance);
        feed.Publish(new PlacementView(1, view, Replicas: 3, WriteQuorum: 2));
        _router = new TopologyByteRouter(feed);
        _writer = new ReplicaWriter(_router, _health, NullLogger<ReplicaWriter>.Instance);
        _reader = new ReplicaReader(_router, _health);
    }

    public async ValueTask DisposeAsync()
    {
        _router?.Dispose();
        foreach (var (app, records, _) in _nodes)
        {
            await app.StopAsync();
            await app.DisposeAsync();
            records.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private static (byte[] Bytes, Digest Digest) Blob(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return (b, Digest.Parse("sha256:" + Convert.ToHexStringLower(SHA256.HashData(b))));
    }

    private async Task KillAsync(string nodeId) => await _nodes[int.Parse(nodeId[5..])].App.StopAsync();

    private async Task<byte[]> ReadAllAsync(Digest digest, long size, string[] holders)
    {
        await using var stream = await _reader!.OpenAsync(digest, 0, size, holders, default);
        Assert.NotNull(stream);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_stopped_silo_leaves_a_write_on_the_other_two_and_readable()
    {
        var (bytes, digest) = Blob(3_000_000, 1);
        var owners = _router!.OwnersOfDigest(digest);
        await KillAsync(owners[0]);

        var (size, holders) = await _writer!.WriteBlobAsync(digest, new MemoryStream(bytes), bytes.Length, default);

        Assert.Equal(bytes.Length, size);
        Assert.Equal(owners.Skip(1).Order(), holders.Order());
        Assert.True(_health.IsAvoided(owners[0]));
        Assert.Equal(bytes, await ReadAllAsync(digest, size, [.. owners])); // The dead one is skipped.
    }

    [Fact(Timeout = 60_000)]
    public async Task A_digest_mismatch_over_grpc_is_digest_invalid_and_nothing_is_stored()
    {
        var (bytes, _) = Blob(500_000, 2);
        var (_, claimed) = Blob(500_000, 3);

        var e = await Assert.ThrowsAsync<RegistryException>(() => _writer!.WriteBlobAsync(claimed, new MemoryStream(bytes), null, default));

        Assert.Equal(ErrorCode.DigestInvalid, e.Code);
        foreach (var (_, _, store) in _nodes)
        {
            Assert.Null(await store.StatAsync(claimed, default));
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task An_upload_continues_on_two_silos_after_the_third_is_stopped_mid_upload()
    {
        var (bytes, digest) = Blob(2_000_000, 4);
        var id = Guid.NewGuid().ToString("N");
        var owners = _router!.OwnersOfUpload(id).ToArray();
        var (length, remaining) = await _writer!.AppendUploadAsync(id, owners, 0, new MemoryStream(bytes, 0, 1_000_000), default);
        Assert.Equal(3, remaining.Length);

        await KillAsync(owners[2]);
        (length, remaining) = await _writer.AppendUploadAsync(id, remaining, length, new MemoryStream(bytes, 1_000_000, 1_000_000), default);
        var holders = await _writer.CommitUploadAsync(id, remaining, digest, length, default);

        Assert.Equal(owners[..2].Order(), holders.Order());
        Assert.Equal(bytes, await ReadAllAsync(digest, bytes.Length, holders));
    }
}
