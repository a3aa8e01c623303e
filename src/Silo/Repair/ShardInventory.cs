using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Contracts.Protos.Repair;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Repair;

/// <summary>The owners of every shard under one placement view, computed once per epoch.</summary>
public sealed class ShardOwnership
{
    private readonly string[][] _owners;

    private ShardOwnership(PlacementView view)
    {
        View = view;
        _owners = new string[Shards.Count][];
        var replicas = Math.Max(1, view.Replicas);
        Parallel.For(0, Shards.Count, new ParallelOptions { MaxDegreeOfParallelism = 2 },
            s => _owners[s] = [.. RendezvousPlacement.Owners(view, s, replicas).Select(n => n.NodeId)]);
    }

    public PlacementView View { get; }

    public IReadOnlyList<string> Owners(int shard) => _owners[shard];

    public bool Owns(int shard, string node) => Array.IndexOf(_owners[shard], node) >= 0;

    public bool CoOwn(int shard, string a, string b) => Owns(shard, a) && Owns(shard, b);

    private static ShardOwnership? _cached;

    /// <summary>The ownership of <paramref name="view"/>, reused while the epoch (and so the view) is unchanged.</summary>
    public static ShardOwnership Of(PlacementView view)
    {
        var cached = _cached;
        if (cached is not null && cached.View.Epoch == view.Epoch && cached.View.Replicas == view.Replicas && cached.View.Nodes.SequenceEqual(view.Nodes))
        {
            return cached;
        }
        var fresh = new ShardOwnership(view);
        _cached = fresh;
        return fresh;
    }
}

/// <summary>
/// What this node holds, grouped by shard, with a summary hash per shard (DESIGN principle 6: owners compare per-shard
/// summaries and copy what is missing). Logs are summarized by id, commit point and its ballot (and whether the log
/// was forgotten); blobs by digest. Two owners with equal summaries hold the same keys.
/// </summary>
public sealed class ShardInventory
{
    public required long Epoch { get; init; }

    public required DateTimeOffset Built { get; init; }

    public Dictionary<int, List<LogSummary>> Logs { get; } = [];

    public Dictionary<int, List<BlobSummary>> Blobs { get; } = [];

    public Dictionary<int, ByteString> LogHashes { get; } = [];

    public Dictionary<int, ByteString> BlobHashes { get; } = [];

    public long LogCount { get; private set; }

    public long BlobCount { get; private set; }

    public long BlobBytes { get; private set; }

    public static ShardInventory Build(LogReplica replica, BlobStore blobs, long epoch)
    {
        var inventory = new ShardInventory { Epoch = epoch, Built = DateTimeOffset.UtcNow };
        foreach (var held in replica.ListLogs())
        {
            // A log with nothing committed (a leader promised, nothing was written: a read of an unknown repository)
            // holds no data to copy; its promise floor is each owner's own.
            if (ReplicatedLogs.ShardOfLog(held.Log) is not { } shard || (held.Committed == 0 && !held.Forgotten))
            {
                continue;
            }
            if (!inventory.Logs.TryGetValue(shard, out var list))
            {
                inventory.Logs[shard] = list = [];
            }
            list.Add(new LogSummary { Log = held.Log, Committed = held.Committed, CommittedBallot = held.CommittedBallot, Forgotten = held.Forgotten, ForgottenUnixMs = held.ForgottenUnixMs });
            if (!held.Forgotten)
            {
                inventory.LogCount++;
            }
        }
        Digest? after = null;
        List<StoredBlob> page;
        do
        {
            page = blobs.ListBlobs(after, 1024);
            foreach (var blob in page)
            {
                after = blob.Digest;
                var shard = Shards.OfDigest(blob.Digest);
                if (!inventory.Blobs.TryGetValue(shard, out var list))
                {
                    inventory.Blobs[shard] = list = [];
                }
                list.Add(new BlobSummary { Digest = blob.Digest.ToString(), Size = blob.Size });
                inventory.BlobCount++;
                inventory.BlobBytes += blob.Size;
            }
        }
        while (page.Count == 1024);
        foreach (var (shard, list) in inventory.Logs)
        {
            inventory.LogHashes[shard] = Hash(list.Select(l => $"{l.Log}\0{l.Committed}\0{l.CommittedBallot?.Counter}\0{l.CommittedBallot?.Node}\0{l.Forgotten}"));
        }
        foreach (var (shard, list) in inventory.Blobs)
        {
            inventory.BlobHashes[shard] = Hash(list.Select(b => b.Digest));
        }
        return inventory;
    }

    private static ByteString Hash(IEnumerable<string> items)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var item in items)
        {
            sha.AppendData(Encoding.UTF8.GetBytes(item));
            sha.AppendData("\n"u8);
        }
        return ByteString.CopyFrom(sha.GetHashAndReset().AsSpan(0, 16));
    }
}
