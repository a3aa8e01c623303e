using System.Security.Cryptography;
using Wharf.Contracts.Oci;
using Wharf.Silo.Storage;
using ErrorCode = Wharf.Contracts.Oci.ErrorCode;

namespace Wharf.Tests.Unit.Replication;

/// <summary>
/// A silo at its capacity (<c>Wharf:Node:CapacityBytes</c>) answers as a full disk does: UNAVAILABLE before anything is
/// visible, what it holds untouched; the gateway's writer then puts the copy on the next node of the ranking (a hinted
/// copy) or, when fewer than W nodes can take it, answers 503.
/// </summary>
public sealed class CapacityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-capacity-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (byte[] Bytes, Digest Digest) Blob(int size, int seed)
    {
        var b = new byte[size];
        new Random(seed).NextBytes(b);
        return (b, Digest.Parse("sha256:" + Convert.ToHexStringLower(SHA256.HashData(b))));
    }

    [Fact]
    public async Task A_store_at_its_capacity_refuses_new_bytes_as_unavailable_and_keeps_what_it_holds()
    {
        using (var records = RecordStore.Open(Path.Combine(_dir, "db")))
        {
            var store = new BlobStore(records, _dir, capacityBytes: 100_000);
            var (first, firstDigest) = Blob(60_000, 1);
            var (second, secondDigest) = Blob(60_000, 2);
            await store.WriteBlobAsync(firstDigest, new MemoryStream(first), first.Length, default);

            // Declared too big, or found too big once streamed (no length given): refused, nothing visible, no temporary left.
            var declared = await Assert.ThrowsAsync<RegistryException>(() => store.WriteBlobAsync(secondDigest, new MemoryStream(second), second.Length, default));
            Assert.Equal(ErrorCode.Unavailable, declared.Code);
            Assert.Contains("storage is full", declared.Message);
            var streamed = await Assert.ThrowsAsync<RegistryException>(() => store.WriteBlobAsync(secondDigest, new MemoryStream(second), null, default));
            Assert.Equal(ErrorCode.Unavailable, streamed.Code);
            Assert.Null(await store.StatAsync(secondDigest, default));
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dir, "tmp")));
            // An upload past the capacity is refused at its first chunk beyond it, and cannot be committed.
            await store.AppendUploadAsync("u1", 0, new MemoryStream(second), default);
            Assert.Equal(ErrorCode.Unavailable, (await Assert.ThrowsAsync<RegistryException>(() => store.CommitUploadAsync("u1", secondDigest, second.Length, default))).Code);
            Assert.Equal(ErrorCode.Unavailable, (await Assert.ThrowsAsync<RegistryException>(() => store.AppendUploadAsync("u1", second.Length, new MemoryStream(second), default))).Code);

            // What it holds reads back whole; the same blob again is no new bytes; room made is room to write.
            await using (var read = await store.OpenReadAsync(firstDigest, 0, first.Length, default))
            {
                using var copy = new MemoryStream();
                await read!.CopyToAsync(copy);
                Assert.Equal(first, copy.ToArray());
            }
            Assert.Equal(first.Length, await store.WriteBlobAsync(firstDigest, new MemoryStream(first), first.Length, default));
            store.Drop(firstDigest);
            Assert.Equal(second.Length, await store.WriteBlobAsync(secondDigest, new MemoryStream(second), second.Length, default));
        }

        // The count survives a restart: it is taken from the index when the store opens.
        using var reopened = RecordStore.Open(Path.Combine(_dir, "db"));
        var again = new BlobStore(reopened, _dir, capacityBytes: 100_000);
        Assert.Equal(60_000, again.HeldBytes);
        var (third, thirdDigest) = Blob(60_000, 3);
        Assert.Equal(ErrorCode.Unavailable, (await Assert.ThrowsAsync<RegistryException>(() => again.WriteBlobAsync(thirdDigest, new MemoryStream(third), third.Length, default))).Code);
    }

    [Fact]
    public async Task A_full_owner_gets_no_copy_the_next_node_takes_a_hinted_one_and_two_full_owners_of_three_mean_503()
    {
        // Node 0 can hold almost nothing; the others are unlimited.
        using var cluster = new ReplicaNodes(nodes: 4, replicas: 3, writeQuorum: 2, capacity: i => i == 0 ? 10_000 : 0);
        var seed = 0;
        (byte[] Bytes, Digest Digest) blob;
        do
        {
            blob = Blob(200_000, seed++);
        }
        while (!cluster.OwnersOfDigest(blob.Digest).Contains("node-0"));

        var (_, first) = await cluster.Writer.WriteBlobAsync(blob.Digest, new MemoryStream(blob.Bytes), blob.Bytes.Length, default);
        Assert.Equal(2, first.Length);
        Assert.DoesNotContain("node-0", first);
        Assert.True(cluster.Health.IsAvoided("node-0"));
        Assert.Null(await cluster.Nodes["node-0"].Store.StatAsync(blob.Digest, default));

        // The next write goes around the full node: its copy lands on the next node of the ranking.
        var (other, otherDigest) = Blob(200_000, 1000);
        var (_, second) = await cluster.Writer.WriteBlobAsync(otherDigest, new MemoryStream(other), other.Length, default);
        Assert.DoesNotContain("node-0", second);
        Assert.Equal(3, second.Length);

        using var small = new ReplicaNodes(nodes: 3, replicas: 3, writeQuorum: 2, capacity: i => i < 2 ? 10_000 : 0);
        var refused = await Assert.ThrowsAsync<RegistryException>(() => small.Writer.WriteBlobAsync(blob.Digest, new MemoryStream(blob.Bytes), blob.Bytes.Length, default));
        Assert.Equal(ErrorCode.Unavailable, refused.Code);
        // Not acknowledged; the full nodes took nothing (a copy the third node verified and kept is whole, and unused).
        Assert.DoesNotContain("node-0", await small.HoldersAsync(blob.Digest));
        Assert.DoesNotContain("node-1", await small.HoldersAsync(blob.Digest));
    }
}
