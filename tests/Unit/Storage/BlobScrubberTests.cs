using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
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
using ErrorCode = Wharf.Contracts.Oci.ErrorCode;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo;
using Wharf.Silo.Maintenance;
using Wharf.Silo.Observability;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Storage;

/// <summary>
/// The scrubber on a real store (RocksDB + blob files in a temporary folder), with its peers found through the
/// placement view: node "peer" is a second real store behind its gRPC byte service on 127.0.0.1, node "dead" a
/// closed port. Corruption is a byte flipped on disk (or in the RocksDB value), as bit rot would.
/// </summary>
public sealed class BlobScrubberTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-scrub-").FullName;
    private readonly RecordStore _records;
    private readonly BlobStore _store;
    private readonly RecordStore _peerRecords;
    private readonly BlobStore _peer;
    private readonly WebApplication _peerApp;
    private readonly TopologyBlobPeers _peers;
    private readonly ScrubMetrics _metrics = new();
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _counted = [];
    private readonly BlobScrubber _scrubber;

    public BlobScrubberTests()
    {
        _records = RecordStore.Open(Path.Combine(_dir, "local", "db"));
        _store = new BlobStore(_records, Path.Combine(_dir, "local"));
        _peerRecords = RecordStore.Open(Path.Combine(_dir, "peer", "db"));
        _peer = new BlobStore(_peerRecords, Path.Combine(_dir, "peer"));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(_peer);
        _peerApp = builder.Build();
        _peerApp.MapGrpcService<ByteServiceEndpoint>();
        _peerApp.StartAsync().GetAwaiter().GetResult();
        var address = _peerApp.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var feed = new TopologyFeed(new PlacementViewStore(null!, "test"), NullLogger<TopologyFeed>.Instance);
        feed.Publish(new PlacementView(1,
        [
            new PlacementNode("self", NodeState.Active, "", 1, "http://127.0.0.1:1"),
            new PlacementNode("dead", NodeState.Active, "", 1, $"http://127.0.0.1:{ClosedPort()}"),
            new PlacementNode("peer", NodeState.Active, "", 1, address),
        ], Replicas: 3, WriteQuorum: 2));
        _peers = new TopologyBlobPeers(feed, new NodeIdentity("self"));

        _listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, _metrics.Checked.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (_counted)
            {
                _counted[instrument.Name] = _counted.GetValueOrDefault(instrument.Name) + value;
            }
        });
        _listener.Start();

        var options = new WharfOptions { Scrub = new ScrubOptions { BytesPerSecond = 1L << 30 } };
        _scrubber = new BlobScrubber(_store, _peers, _metrics, options, NullLogger<BlobScrubber>.Instance);
    }

    [Fact]
    public async Task A_flipped_byte_in_a_blob_file_is_found_and_repaired_from_a_peer()
    {
        var ct = TestContext.Current.CancellationToken;
        var bad = await PutAsync(_store, RandomNumberGenerator.GetBytes(300_000));
        await PutAsync(_peer, await ReadAllAsync(_store, bad));
        var fine = await PutAsync(_store, RandomNumberGenerator.GetBytes(100_000));
        FlipByte(FilePath(bad), 123_456);
        Assert.NotEqual(bad, Sha256(File.ReadAllBytes(FilePath(bad))));

        var pass = await _scrubber.ScrubOnceAsync(ct);

        Assert.Equal((2L, 1L, 1L, 0L), (pass.Checked, pass.Corrupt, pass.Repaired, pass.Unrepaired));
        Assert.Equal(400_000, pass.Bytes);
        Assert.Equal(bad, Sha256(File.ReadAllBytes(FilePath(bad))));
        Assert.Equal(bad, Sha256(await ReadAllAsync(_store, bad)));
        Assert.Equal(fine, Sha256(await ReadAllAsync(_store, fine)));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dir, "local", "tmp")));
        Assert.Equal(2, Counted("wharf.scrub.checked"));
        Assert.Equal(400_000, Counted("wharf.scrub.bytes"));
        Assert.Equal(1, Counted("wharf.scrub.corrupt"));
        Assert.Equal(1, Counted("wharf.scrub.repaired"));
        Assert.Equal(0, Counted("wharf.scrub.unrepaired"));
        Assert.Same(pass, _scrubber.LastPass);

        var again = await _scrubber.ScrubOnceAsync(ct);
        Assert.Equal((2L, 0L), (again.Checked, again.Corrupt));
    }

    [Fact]
    public async Task A_flipped_byte_in_an_inline_blob_is_found_and_repaired_from_a_peer()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = RandomNumberGenerator.GetBytes(5_000);
        var bad = await PutAsync(_store, content);
        await PutAsync(_peer, content);
        var rotten = (byte[])content.Clone();
        rotten[4_000] ^= 0x01;
        _records.Write(new RecordBatch().Put(Keys.BlobInline(bad), rotten));

        var pass = await _scrubber.ScrubOnceAsync(ct);

        Assert.Equal((1L, 1L, 1L, 0L), (pass.Checked, pass.Corrupt, pass.Repaired, pass.Unrepaired));
        Assert.Equal(content, _records.Get(Keys.BlobInline(bad)));
        Assert.Equal(content, await ReadAllAsync(_store, bad));
        Assert.Equal(1, Counted("wharf.scrub.repaired"));
    }

    [Fact]
    public async Task A_missing_blob_file_is_fetched_again()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = RandomNumberGenerator.GetBytes(64_000);
        var lost = await PutAsync(_store, content);
        await PutAsync(_peer, content);
        File.Delete(FilePath(lost));

        var pass = await _scrubber.ScrubOnceAsync(ct);

        Assert.Equal((1L, 1L, 1L), (pass.Checked, pass.Corrupt, pass.Repaired));
        Assert.Equal(content, File.ReadAllBytes(FilePath(lost)));
    }

    [Fact]
    public async Task A_corrupt_blob_no_peer_has_good_is_moved_aside_and_no_longer_served()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = RandomNumberGenerator.GetBytes(200_000);
        var bad = await PutAsync(_store, content);
        // The peer's copy has rotted too; the other node is not reachable.
        await PutAsync(_peer, content);
        var peerPath = Path.Combine(_dir, "peer", "blobs", "sha256", bad.Hex[..2], bad.Hex);
        FlipByte(peerPath, 10);
        var fine = await PutAsync(_store, RandomNumberGenerator.GetBytes(50_000));
        var small = await PutAsync(_store, RandomNumberGenerator.GetBytes(1_000));
        FlipByte(FilePath(bad), 199_999);
        var rotten = File.ReadAllBytes(FilePath(bad));

        var pass = await _scrubber.ScrubOnceAsync(ct);

        Assert.Equal((3L, 1L, 0L, 1L), (pass.Checked, pass.Corrupt, pass.Repaired, pass.Unrepaired));
        Assert.Null(await _store.StatAsync(bad, ct));
        Assert.Null(await _store.OpenReadAsync(bad, 0, content.Length, ct));
        Assert.False(File.Exists(FilePath(bad)));
        var kept = Assert.Single(Directory.EnumerateFiles(Path.Combine(_dir, "local", "corrupt")));
        Assert.Equal(rotten, File.ReadAllBytes(kept));
        Assert.Equal(fine, Sha256(await ReadAllAsync(_store, fine)));
        Assert.Equal(small, Sha256(await ReadAllAsync(_store, small)));
        Assert.Equal(1, Counted("wharf.scrub.unrepaired"));
        Assert.Equal(0, Counted("wharf.scrub.repaired"));

        // The blob pushed again is stored afresh.
        await PutAsync(_store, content);
        Assert.Equal(content, await ReadAllAsync(_store, bad));
    }

    [Fact]
    public async Task A_clean_store_is_left_as_it_was()
    {
        var ct = TestContext.Current.CancellationToken;
        var big = await PutAsync(_store, RandomNumberGenerator.GetBytes(100_000));
        var small = await PutAsync(_store, RandomNumberGenerator.GetBytes(2_000));
        var written = File.GetLastWriteTimeUtc(FilePath(big));

        var pass = await _scrubber.ScrubOnceAsync(ct);

        Assert.Equal((2L, 102_000L, 0L, 0L, 0L), (pass.Checked, pass.Bytes, pass.Corrupt, pass.Repaired, pass.Unrepaired));
        Assert.Equal(written, File.GetLastWriteTimeUtc(FilePath(big)));
        Assert.Equal(big, Sha256(await ReadAllAsync(_store, big)));
        Assert.Equal(small, Sha256(await ReadAllAsync(_store, small)));
        Assert.False(Directory.Exists(Path.Combine(_dir, "local", "corrupt")));
        Assert.Equal(0, Counted("wharf.scrub.corrupt"));
    }

    [Fact]
    public async Task Repair_refuses_bytes_that_do_not_hash_to_the_digest()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = RandomNumberGenerator.GetBytes(100_000);
        var digest = await PutAsync(_store, content);
        var wrong = (byte[])content.Clone();
        wrong[0] ^= 0xff;

        var e = await Assert.ThrowsAsync<RegistryException>(() => _store.RepairAsync(digest, new MemoryStream(wrong), ct));

        Assert.Equal(ErrorCode.DigestInvalid, e.Code);
        Assert.Equal(content, File.ReadAllBytes(FilePath(digest)));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dir, "local", "tmp")));
    }

    [Fact]
    public async Task A_pass_keeps_to_its_bytes_per_second_budget()
    {
        var ct = TestContext.Current.CancellationToken;
        await PutAsync(_store, RandomNumberGenerator.GetBytes(4 * 1024 * 1024));
        var slow = new BlobScrubber(_store, _peers, _metrics, new WharfOptions { Scrub = new ScrubOptions { BytesPerSecond = 8 * 1024 * 1024 } }, NullLogger<BlobScrubber>.Instance);

        var started = System.Diagnostics.Stopwatch.StartNew();
        var pass = await slow.ScrubOnceAsync(ct);

        // 4 MiB at 8 MiB/s: half a second at least (a lower bound only, so a loaded machine cannot fail it).
        Assert.Equal(4L * 1024 * 1024, pass.Bytes);
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(0.45), $"took {started.Elapsed}");
    }

    private long Counted(string name)
    {
        lock (_counted)
        {
            return _counted.GetValueOrDefault(name);
        }
    }

    private string FilePath(Digest d) => Path.Combine(_dir, "local", "blobs", d.Algorithm, d.Hex[..2], d.Hex);

    private static async Task<Digest> PutAsync(BlobStore store, byte[] content)
    {
        var digest = Sha256(content);
        await store.WriteBlobAsync(digest, new MemoryStream(content), content.Length, CancellationToken.None);
        return digest;
    }

    private static async Task<byte[]> ReadAllAsync(BlobStore store, Digest digest)
    {
        var size = await store.StatAsync(digest, CancellationToken.None) ?? throw new InvalidOperationException("not stored");
        await using var s = (await store.OpenReadAsync(digest, 0, size, CancellationToken.None))!;
        var copy = new MemoryStream();
        await s.CopyToAsync(copy);
        return copy.ToArray();
    }

    private static Digest Sha256(byte[] content) => Digest.Compute("sha256", content);

    private static void FlipByte(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        var b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ 0x20));
    }

    private static int ClosedPort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        _metrics.Dispose();
        _peers.Dispose();
        await _peerApp.StopAsync();
        await _peerApp.DisposeAsync();
        _records.Dispose();
        _peerRecords.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
