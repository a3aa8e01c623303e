using System.Net;
using System.Security.Cryptography;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Bytes;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Storage;

/// <summary>The store called in-process, as the all-in-one does.</summary>
public sealed class InProcessByteServiceTests : ByteServiceContract
{
    protected override IByteService Connect(BlobStore store) => store;
}

/// <summary>
/// The store called in-process, writing through the page cache: <c>Wharf:Node:DirectWrites=false</c>, and what every
/// store does on a filesystem that refuses direct I/O.
/// </summary>
public sealed class PageCacheWritesByteServiceTests : ByteServiceContract
{
    protected override bool DirectWrites => false;

    protected override IByteService Connect(BlobStore store) => store;
}

/// <summary>The same store behind its gRPC byte service on a real Kestrel (HTTP/2, 127.0.0.1), as a gateway reaches a silo.</summary>
public sealed class GrpcByteServiceTests : ByteServiceContract
{
    private WebApplication? _app;
    private GrpcChannel? _channel;

    protected override IByteService Connect(BlobStore store)
    {
        StopServer();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(store);
        _app = builder.Build();
        _app.MapGrpcService<ByteServiceEndpoint>();
        _app.StartAsync().GetAwaiter().GetResult();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _channel = GrpcChannel.ForAddress(address);
        return new GrpcByteService(_channel);
    }

    private void StopServer()
    {
        _channel?.Dispose();
        if (_app is not null)
        {
            _app.StopAsync().GetAwaiter().GetResult();
            ((IDisposable)_app).Dispose();
        }
    }

    public override void Dispose()
    {
        StopServer();
        base.Dispose();
    }
}

/// <summary>
/// One suite for the byte-service contract, run against every implementation (as Distribution's storage-driver
/// suite): a real RocksDB and real files in a temporary folder.
/// </summary>
public abstract class ByteServiceContract : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-store-").FullName;
    private RecordStore _records;
    private BlobStore _store;
    private IByteService _blobs;

    protected ByteServiceContract()
    {
        _records = RecordStore.Open(Path.Combine(_dir, "db"));
        _store = new BlobStore(_records, _dir, directWrites: DirectWrites);
        _blobs = Connect(_store);
    }

    /// <summary>What the store is asked for (<c>Wharf:Node:DirectWrites</c>).</summary>
    protected virtual bool DirectWrites => true;

    protected abstract IByteService Connect(BlobStore store);

    private void Reopen()
    {
        _records.Dispose();
        _records = RecordStore.Open(Path.Combine(_dir, "db"));
        _store = new BlobStore(_records, _dir, directWrites: DirectWrites);
        _blobs = Connect(_store);
    }

    public virtual void Dispose()
    {
        _records.Dispose();
        Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    private static byte[] Random(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return b;
    }

    private async Task<byte[]> ReadAll(Digest d, long offset, long length)
    {
        await using var s = await _blobs.OpenReadAsync(d, offset, length, default);
        Assert.NotNull(s);
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }

    [Theory]
    [InlineData(10)]
    [InlineData(BlobStore.InlineThreshold)]
    [InlineData(BlobStore.InlineThreshold + 1)]
    [InlineData(3_000_000)]
    public async Task A_blob_written_by_digest_reads_back_whole_and_in_ranges(int size)
    {
        var data = Random(size, size);
        var d = Digest.Compute("sha256", data);
        Assert.Equal(size, await _blobs.WriteBlobAsync(d, new MemoryStream(data), size, default));
        Reopen();
        Assert.Equal(size, await _blobs.StatAsync(d, default));
        Assert.Equal(data, await ReadAll(d, 0, size));
        Assert.Equal(data.AsSpan(size / 3, size / 2).ToArray(), await ReadAll(d, size / 3, size / 2));
    }

    [Fact]
    public async Task Large_blobs_are_files_and_small_blobs_are_not()
    {
        var small = Random(1000, 1);
        var large = Random(BlobStore.InlineThreshold + 1, 2);
        await _blobs.WriteBlobAsync(Digest.Compute("sha256", small), new MemoryStream(small), null, default);
        await _blobs.WriteBlobAsync(Digest.Compute("sha256", large), new MemoryStream(large), null, default);
        var files = Directory.GetFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories);
        Assert.Equal([Digest.Compute("sha256", large).Hex], files.Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_wrong_digest_is_refused_and_leaves_nothing_visible()
    {
        var data = Random(500_000, 3);
        var wrong = Digest.Compute("sha256", Random(10, 4));
        var e = await Assert.ThrowsAsync<RegistryException>(() => _blobs.WriteBlobAsync(wrong, new MemoryStream(data), null, default));
        Assert.Equal("DIGEST_INVALID", e.Code.Code);
        Assert.Null(await _blobs.StatAsync(wrong, default));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "tmp")));
    }

    [Fact]
    public async Task An_upload_appends_truncates_unacknowledged_bytes_and_commits_by_rename()
    {
        var data = Random(1_000_000, 5);
        var d = Digest.Compute("sha256", data);
        Assert.Equal(400_000, await _blobs.AppendUploadAsync("u1", 0, new MemoryStream(data, 0, 400_000), default));
        // A chunk that was written but never acknowledged: the session still says 400,000.
        await _blobs.AppendUploadAsync("u1", 400_000, new MemoryStream(Random(123_456, 6)), default);
        Reopen();
        Assert.Equal(1_000_000, await _blobs.AppendUploadAsync("u1", 400_000, new MemoryStream(data, 400_000, 600_000), default));
        var part = Path.Combine(_dir, "uploads", "u1.part");
        using var handle = File.OpenHandle(part, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        await _blobs.CommitUploadAsync("u1", d, data.Length, default);
        Assert.False(File.Exists(part));
        var file = Directory.GetFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories).Single();
        // Renamed, not copied: the part file's open inode is now the blob file.
        var fd = handle.DangerousGetHandle().ToInt32();
        Assert.Equal(file, new FileInfo($"/proc/self/fd/{fd}").LinkTarget);
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await ReadAll(d, 0, data.Length)));
    }

    [Fact]
    public async Task An_upload_in_chunks_of_odd_sizes_read_in_trickles_commits_byte_for_byte()
    {
        // Chunk ends on and off the 4 KiB alignment and the 256 KiB write size of direct writes, each chunk arriving in
        // reads of 1 byte to 70 KB, one of them written past the acknowledged offset and then resumed from it.
        int[] sizes = [1, 4095, 4097, 262_143, 262_145, 1_048_575, 1_048_577, 3_000_001, 4096, 7];
        var data = Random(sizes.Sum(), 12);
        var d = Digest.Compute("sha256", data);
        long offset = 0;
        var rng = new Random(13);
        foreach (var size in sizes)
        {
            if (size == 3_000_001)
            {
                await _blobs.AppendUploadAsync("u5", offset, new Trickle(Random(2_500_003, 14), rng), default);
            }
            var acknowledged = await _blobs.AppendUploadAsync("u5", offset, new Trickle(data.AsSpan((int)offset, size).ToArray(), rng), default);
            offset += size;
            Assert.Equal(offset, acknowledged);
        }
        await _blobs.CommitUploadAsync("u5", d, data.Length, default);
        Reopen();
        Assert.Equal(data.Length, await _blobs.StatAsync(d, default));
        Assert.Equal(SHA256.HashData(data), SHA256.HashData(await ReadAll(d, 0, data.Length)));
        Assert.Equal(data.AsSpan(4095, 5000).ToArray(), await ReadAll(d, 4095, 5000));
    }

    [Fact]
    public async Task A_blob_arriving_in_trickles_is_stored_byte_for_byte()
    {
        var data = Random(2 * 1_048_576 + 12_345, 15);
        var d = Digest.Compute("sha256", data);
        Assert.Equal(data.Length, await _blobs.WriteBlobAsync(d, new Trickle(data, new Random(16)), data.Length, default));
        Assert.Equal(data, await ReadAll(d, 0, data.Length));
    }

    [Fact]
    public void Direct_writes_are_used_where_asked_for_and_the_filesystem_takes_them()
    {
        // Debian's ext4, XFS and btrfs all take O_DIRECT; elsewhere (tmpfs, overlay) the store may fall back.
        var format = new DriveInfo(_dir).DriveFormat;
        if (!DirectWrites)
        {
            Assert.False(_store.DirectWrites);
        }
        else if (OperatingSystem.IsLinux() && format is "ext4" or "ext3" or "ext2" or "xfs" or "btrfs")
        {
            Assert.True(_store.DirectWrites, $"a store on {format} should write with direct I/O");
        }
    }

    /// <summary>A stream that hands out its bytes in reads of random size, as a network body does.</summary>
    private sealed class Trickle(byte[] bytes, Random rng) : MemoryStream(bytes, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, rng.Next(1, 70_000)));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, rng.Next(1, 70_000))]);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer, offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));
    }

    [Fact]
    public async Task An_upload_missing_acknowledged_bytes_is_refused()
    {
        await _blobs.AppendUploadAsync("u2", 0, new MemoryStream(Random(100, 7)), default);
        var e = await Assert.ThrowsAsync<RegistryException>(() => _blobs.AppendUploadAsync("u2", 500, new MemoryStream(Random(10, 8)), default));
        Assert.Equal("BLOB_UPLOAD_INVALID", e.Code.Code);
    }

    [Fact]
    public async Task The_same_blob_stored_twice_is_kept_once()
    {
        var data = Random(300_000, 9);
        var d = Digest.Compute("sha256", data);
        await _blobs.WriteBlobAsync(d, new MemoryStream(data), null, default);
        await _blobs.AppendUploadAsync("u3", 0, new MemoryStream(data), default);
        await _blobs.CommitUploadAsync("u3", d, data.Length, default);
        Assert.Single(Directory.GetFiles(Path.Combine(_dir, "blobs"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "uploads")));
    }

    [Fact]
    public async Task A_missing_blob_reads_as_absent()
    {
        var d = Digest.Compute("sha256", [1, 2, 3]);
        Assert.Null(await _blobs.StatAsync(d, default));
        Assert.Null(await _blobs.OpenReadAsync(d, 0, 3, default));
    }

    [Fact]
    public async Task A_zero_byte_blob_round_trips()
    {
        var d = Digest.Compute("sha256", []);
        Assert.Equal(0, await _blobs.WriteBlobAsync(d, new MemoryStream(), 0, default));
        Assert.Empty(await ReadAll(d, 0, 0));
    }

    [Fact]
    public async Task A_length_that_disagrees_with_the_bytes_is_size_invalid()
    {
        var data = Random(1000, 11);
        var e = await Assert.ThrowsAsync<RegistryException>(() => _blobs.WriteBlobAsync(Digest.Compute("sha256", data), new MemoryStream(data), 999, default));
        Assert.Equal("SIZE_INVALID", e.Code.Code);
    }

    [Fact]
    public void Record_scans_page_in_key_order_after_last()
    {
        var batch = new RecordBatch();
        foreach (var t in new[] { "b", "a", "c", "ab", "d" })
        {
            batch.Put("p/" + t, [1]);
        }
        batch.Put("q/zz", [1]);
        _records.Write(batch);
        Assert.Equal(["a", "ab", "b"], _records.Scan("p/", null, 3).Select(kv => kv.Key));
        Assert.Equal(["ab", "b", "c", "d"], _records.Scan("p/", "a", 10).Select(kv => kv.Key));
        Assert.Empty(_records.Scan("p/", "d", 10));
    }
}
