using System.Buffers.Binary;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;

namespace Wharf.PlacementSim;

/// <summary>
/// The keys the simulation places: blobs addressed by digest (shard = the digest's first 16 bits, as
/// <see cref="Shards.OfDigest"/>), with sizes drawn from a log-normal distribution with a long tail, as container
/// layers are (many small config and script layers, a few multi-GiB ones). Fixed seed: every run is the same.
/// </summary>
public sealed class Workload
{
    public const double MedianBytes = 2 * 1024 * 1024;
    public const double Sigma = 2.0;
    public const long MaxBytes = 16L * 1024 * 1024 * 1024;

    public required int Keys { get; init; }
    public required long[] KeysPerShard { get; init; }
    public required long[] BytesPerShard { get; init; }
    public required long[] Sizes { get; init; }

    public long TotalBytes => BytesPerShard.Sum();

    public static Workload Create(int keys, int seed)
    {
        var keysPerShard = new long[Shards.Count];
        var bytesPerShard = new long[Shards.Count];
        var sizes = new long[keys];
        var random = new Random(seed);
        Span<byte> name = stackalloc byte[8];
        for (var i = 0; i < keys; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(name, i);
            var shard = Shards.OfDigest(Digest.Compute(Digest.Sha256, name));
            // Box–Muller: one standard normal from two uniforms in (0, 1].
            var z = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            var size = (long)Math.Min(MaxBytes, Math.Max(1, MedianBytes * Math.Exp(Sigma * z)));
            sizes[i] = size;
            keysPerShard[shard]++;
            bytesPerShard[shard] += size;
        }
        return new Workload { Keys = keys, KeysPerShard = keysPerShard, BytesPerShard = bytesPerShard, Sizes = sizes };
    }
}
