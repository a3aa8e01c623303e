using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Caching;

/// <summary>
/// How often each digest was asked for lately, approximately and in fixed memory: a count-min sketch (4 rows of
/// 16-bit counters, the smallest of a digest's 4 counters is its estimate) whose counters are all halved every
/// <c>10 × width</c> lookups, so old popularity fades (TinyLFU, Einziger and Friedman; Caffeine's admission filter).
/// Not thread-safe: callers hold their own lock.
/// </summary>
internal sealed class FrequencySketch
{
    private const int Rows = 4;
    private readonly ushort[] _counters;
    private readonly int _mask;
    private readonly int _resetAfter;
    private int _additions;

    public FrequencySketch(int width = 8192)
    {
        width = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(64, width));
        _counters = new ushort[Rows * width];
        _mask = width - 1;
        _resetAfter = 10 * width;
    }

    /// <summary>Counts one lookup of <paramref name="digest"/>.</summary>
    public void Increment(Digest digest)
    {
        var h = Seed(digest);
        for (var row = 0; row < Rows; row++)
        {
            ref var c = ref _counters[Index(h, row)];
            if (c < ushort.MaxValue)
            {
                c++;
            }
        }
        if (++_additions >= _resetAfter)
        {
            for (var i = 0; i < _counters.Length; i++)
            {
                _counters[i] >>= 1;
            }
            _additions /= 2;
        }
    }

    /// <summary>The estimated lookups of <paramref name="digest"/> lately (never fewer than it had).</summary>
    public int Estimate(Digest digest)
    {
        var h = Seed(digest);
        var min = int.MaxValue;
        for (var row = 0; row < Rows; row++)
        {
            min = Math.Min(min, _counters[Index(h, row)]);
        }
        return min;
    }

    private static ulong Seed(Digest digest) => (ulong)(uint)digest.GetHashCode() * 0x9E3779B97F4A7C15UL;

    private int Index(ulong seed, int row)
    {
        // A different odd multiplier per row spreads one digest over unrelated counters.
        var h = (seed + (ulong)row) * (0xBF58476D1CE4E5B9UL + ((ulong)row << 1));
        h ^= h >> 31;
        return (row * (_mask + 1)) + (int)(h & (ulong)_mask);
    }
}
