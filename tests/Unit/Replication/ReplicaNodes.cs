using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using ErrorCode = Wharf.Contracts.Oci.ErrorCode;
using Wharf.Contracts.Placement;
using Wharf.Gateway.Bytes;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Replication;

/// <summary>
/// N real nodes (each a BlobStore on its own RocksDB and folder) behind a router that places keys exactly as the
/// gateway's does (weighted rendezvous over a placement view), with the gateway's writer and reader on top.
/// A node can be made unreachable, or made to die part-way through a read.
/// </summary>
public sealed class ReplicaNodes : IByteRouter, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-replicas-").FullName;
    private readonly List<RecordStore> _records = [];
    private PlacementView _view;

    /// <param name="capacity">Each node's <c>Wharf:Node:CapacityBytes</c> (0: no limit).</param>
    public ReplicaNodes(int nodes, int replicas, int writeQuorum, TimeSpan? stallTimeout = null, Func<int, long>? capacity = null)
    {
        var list = new List<PlacementNode>();
        for (var i = 0; i < nodes; i++)
        {
            var id = $"node-{i}";
            var dir = Path.Combine(_dir, id);
            var records = RecordStore.Open(Path.Combine(dir, "db"));
            _records.Add(records);
            Nodes[id] = new TestNode(new BlobStore(records, dir, capacity?.Invoke(i) ?? 0));
            list.Add(new PlacementNode(id, NodeState.Active, "", 1.0, ""));
        }
        _view = new PlacementView(1, list, replicas, writeQuorum);
        Health = new NodeHealth();
        Writer = new ReplicaWriter(this, Health, NullLogger<ReplicaWriter>.Instance, stallTimeout);
        Reader = new ReplicaReader(this, Health);
    }

    public Dictionary<string, TestNode> Nodes { get; } = new(StringComparer.Ordinal);

    public NodeHealth Health { get; }

    public ReplicaWriter Writer { get; }

    public ReplicaReader Reader { get; }

    /// <summary>Marks a node's state in the placement view (as the cluster's coordinator would).</summary>
    public void SetState(string nodeId, NodeState state) =>
        _view = _view with { Epoch = _view.Epoch + 1, Nodes = [.. _view.Nodes.Select(n => n.NodeId == nodeId ? n with { State = state } : n)] };

    public IReadOnlyList<string> OwnersOfDigest(Digest digest) => Owners(Shards.OfDigest(digest));

    public IReadOnlyList<string> OwnersOfUpload(string uploadId) => Owners(Shards.OfUpload(uploadId));

    public IReadOnlyList<string> RankingOfDigest(Digest digest) =>
        [.. RendezvousPlacement.Rank(_view.Nodes.Where(n => n.State == NodeState.Active), Shards.OfDigest(digest)).Select(n => n.NodeId)];

    public int WriteQuorum => _view.WriteQuorum;

    public int Replicas => _view.Replicas;

    public NodeState? StateOf(string nodeId) => _view.Find(nodeId)?.State;

    public IByteService Node(string nodeId) => Nodes[nodeId];

    private List<string> Owners(int shard) => [.. RendezvousPlacement.Owners(_view, shard, _view.Replicas).Select(n => n.NodeId)];

    /// <summary>The nodes whose own store holds the blob.</summary>
    public async Task<string[]> HoldersAsync(Digest digest)
    {
        var holders = new List<string>();
        foreach (var (id, node) in Nodes)
        {
            if (await node.Store.StatAsync(digest, default) is not null)
            {
                holders.Add(id);
            }
        }
        return [.. holders.Order(StringComparer.Ordinal)];
    }

    public void Dispose()
    {
        foreach (var r in _records)
        {
            r.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>A node's byte service as the gateway reaches it, which a test can take down.</summary>
public sealed class TestNode(BlobStore store) : IByteService
{
    private int _reads;

    public BlobStore Store { get; } = store;

    /// <summary>Every call fails as an unreachable node's would.</summary>
    public bool Down { get; set; }

    /// <summary>Writes to this node hang without reading a byte (a node that accepts connections but is stuck).</summary>
    public bool Hangs { get; set; }

    /// <summary>When set, a read stream from this node breaks (and the node goes down) after this many bytes.</summary>
    public long? DieAfterReading { get; set; }

    /// <summary>When set, a read stream from this node stops sending (a paused process) after this many bytes.</summary>
    public long? StallAfterReading { get; set; }

    /// <summary>When set, reads wait for it (to hold concurrent readers at the node).</summary>
    public TaskCompletionSource? ReadGate { get; set; }

    public int Reads => _reads;

    private void ThrowIfDown()
    {
        if (Down)
        {
            throw new RegistryException(ErrorCode.Unavailable, "storage node unreachable: test");
        }
    }

    public Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        return Store.StatAsync(digest, cancellationToken);
    }

    public async Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        Interlocked.Increment(ref _reads);
        if (ReadGate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }
        var stream = await Store.OpenReadAsync(digest, offset, length, cancellationToken);
        if (stream is not null && StallAfterReading is { } stall)
        {
            return new DyingStream(stream, stall, this, stalls: true);
        }
        return stream is null || DieAfterReading is not { } limit ? stream : new DyingStream(stream, limit, this);
    }

    public async Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        if (Hangs)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        return await Store.WriteBlobAsync(digest, content, expectedLength, cancellationToken);
    }

    public Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        return Store.AppendUploadAsync(uploadId, offset, content, cancellationToken);
    }

    public Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        return Store.CommitUploadAsync(uploadId, digest, length, cancellationToken);
    }

    public Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        return Store.DeleteUploadAsync(uploadId, cancellationToken);
    }

    /// <summary>
    /// A read that breaks like a dropped connection after a number of bytes (the node is down from then on), or with
    /// <paramref name="stalls"/> waits from then on like a paused process, until the reader cancels.
    /// </summary>
    private sealed class DyingStream(Stream inner, long limit, TestNode node, bool stalls = false) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit && stalls)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            if (_read >= limit)
            {
                node.Down = true;
                throw new IOException("blob stream broke: connection reset (test)");
            }
            var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, limit - _read)], cancellationToken);
            _read += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
