using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Wharf.Gateway.Hosting;

namespace Wharf.Tests.Unit.Hosting;

/// <summary>Kestrel's pool with larger blocks (<c>Wharf:Kestrel:BlockKiB</c>): what the socket transport receives into.</summary>
public class LargeBlockMemoryPoolTests
{
    [Fact]
    public void Blocks_have_the_configured_size_are_reused_once_returned_and_a_larger_rent_is_refused()
    {
        using var pool = new LargeBlockMemoryPoolFactory(64 * 1024).Create();
        Assert.Equal(64 * 1024, pool.MaxBufferSize);
        var first = pool.Rent();
        Assert.Equal(64 * 1024, first.Memory.Length);
        var second = pool.Rent(1000);
        Assert.Equal(64 * 1024, second.Memory.Length);
        first.Memory.Span[0] = 42;
        first.Dispose();
        var again = pool.Rent();
        Assert.Equal(42, again.Memory.Span[0]); // the same block, not a new one
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent((64 * 1024) + 1));
        again.Dispose();
        second.Dispose();
    }

    [Fact]
    public void A_block_disposed_twice_is_lent_to_one_renter_only()
    {
        using var pool = new LargeBlockMemoryPoolFactory(64 * 1024).Create();
        var block = pool.Rent();
        block.Dispose();
        block.Dispose();
        var x = pool.Rent();
        var y = pool.Rent();
        x.Memory.Span[0] = 1;
        y.Memory.Span[0] = 2;
        Assert.Equal(1, x.Memory.Span[0]); // two renters, two blocks: neither writes into the other's
        x.Dispose();
        y.Dispose();
    }

    [Fact]
    public void At_most_64_MiB_of_free_blocks_are_kept_round_after_round()
    {
        const int blockSize = 1 << 20;
        using var pool = new LargeBlockMemoryPoolFactory(blockSize).Create();
        var seen = new HashSet<byte[]>(ReferenceEqualityComparer.Instance);
        for (var round = 0; round < 3; round++)
        {
            var lent = Enumerable.Range(0, 70).Select(_ => pool.Rent()).ToList();
            var arrays = lent.Select(b => MemoryMarshal.TryGetArray<byte>(b.Memory, out var a) ? a.Array! : throw new InvalidOperationException()).ToList();
            // The first round's blocks are all new; later rounds get back the 64 the pool kept (64 MiB) and 6 new ones.
            Assert.Equal(round == 0 ? 0 : 64, arrays.Count(seen.Contains));
            seen.UnionWith(arrays);
            lent.ForEach(b => b.Dispose());
        }
    }

    [Theory]
    [InlineData(null, 64 * 1024)]
    [InlineData("128", 128 * 1024)]
    [InlineData("0", 4096)]
    [InlineData("4", 4096)]
    public void Hosts_receive_into_64_KiB_blocks_unless_configured_otherwise(string? setting, int blockSize)
    {
        var builder = WebApplication.CreateBuilder();
        if (setting is not null)
        {
            builder.Configuration[KestrelBlocks.Key] = setting;
        }
        KestrelBlocks.Configure(builder);
        using var app = builder.Build();
        using var pool = app.Services.GetService<IMemoryPoolFactory<byte>>()?.Create();
        Assert.Equal(blockSize, pool?.MaxBufferSize ?? 4096); // no factory registered: Kestrel's own pool, 4 KiB blocks
    }
}
