using System.Security.Cryptography;
using Wharf.Contracts.Oci;

namespace Wharf.Tests.Unit.Oci;

public class ResumableHashTests
{
    [Theory]
    [InlineData("sha256", 0)]
    [InlineData("sha256", 1)]
    [InlineData("sha256", 63)]
    [InlineData("sha256", 64)]
    [InlineData("sha256", 1000)]
    [InlineData("sha512", 127)]
    [InlineData("sha512", 128)]
    [InlineData("sha512", 3001)]
    public void Resuming_from_exported_state_gives_the_digest_of_the_whole(string algorithm, int split)
    {
        var data = new byte[5000];
        new Random(split).NextBytes(data);
        byte[] state;
        using (var first = ResumableHash.Create(algorithm))
        {
            first.Append(data.AsSpan(0, split));
            state = first.ExportState();
        }
        using var resumed = ResumableHash.Restore(state);
        Assert.Equal(split, resumed.Length);
        resumed.Append(data.AsSpan(split));
        var expected = algorithm == "sha256" ? SHA256.HashData(data) : SHA512.HashData(data);
        Assert.Equal(Convert.ToHexStringLower(expected), resumed.FinishDigest().Hex);
    }

    [Fact]
    public void Many_resumes_at_random_offsets_match_a_one_shot_hash()
    {
        var rng = new Random(42);
        var data = new byte[200_000];
        rng.NextBytes(data);
        var state = ResumableHash.Create("sha256").ExportState();
        var offset = 0;
        while (offset < data.Length)
        {
            var n = Math.Min(rng.Next(1, 20_000), data.Length - offset);
            using var h = ResumableHash.Restore(state);
            h.Append(data.AsSpan(offset, n));
            state = h.ExportState();
            offset += n;
        }
        using var last = ResumableHash.Restore(state);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(data)), last.FinishDigest().Hex);
    }

    [Fact]
    public void A_corrupt_state_is_refused()
    {
        var state = ResumableHash.Create("sha256").ExportState();
        state[0] = 99;
        Assert.Throws<FormatException>(() => ResumableHash.Restore(state));
    }
}
