using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Wharf.Gateway.Hosting;

/// <summary>
/// Kestrel's memory pool with larger blocks (<c>Wharf:Kestrel:BlockKiB</c>, 64 by default). Kestrel's socket
/// transport receives into one pool block at a time, so with its own 4 KiB blocks a 1 GiB upload costs 262,144
/// receive calls and as many wake-ups of the reader; larger blocks cut both (docs/performance.md: a split push 3.58 to
/// 2.54 s of CPU per GB, a 1 MiB GET 0.48 to 0.34 ms; manifest GETs and the processes' RSS unchanged). Blocks are
/// pinned (allocated on the pinned object heap, as Kestrel's own are) and reused; idle connections hold none (Kestrel
/// waits for data before it takes a block).
/// </summary>
public sealed class LargeBlockMemoryPoolFactory(int blockSize) : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(blockSize);
}

internal sealed class LargeBlockMemoryPool(int blockSize) : MemoryPool<byte>
{
    // Free blocks kept for reuse, at most 64 MiB of them: beyond that the GC takes them (a burst does not pin memory for good).
    private readonly int _maxFree = Math.Max(16, (64 << 20) / blockSize);
    private readonly ConcurrentQueue<Block> _free = new();
    // The queue's length, kept apart: ConcurrentQueue.Count takes the queue's lock once it spans several segments,
    // and every block return asks.
    private int _freeCount;
    private bool _disposed;

    public override int MaxBufferSize => blockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, blockSize);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            block.Lend();
            return block;
        }
        return new Block(this, GC.AllocateUninitializedArray<byte>(blockSize, pinned: true));
    }

    private void Return(Block block)
    {
        if (_disposed)
        {
            return;
        }
        if (Interlocked.Increment(ref _freeCount) <= _maxFree)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        _free.Clear();
    }

    private sealed class Block(LargeBlockMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        // 1 while lent out: a second Dispose of the same lease does not put the block in the free list twice (it
        // would be handed to two renters at once).
        private int _lent = 1;

        public Memory<byte> Memory { get; } = array;

        public void Lend() => Volatile.Write(ref _lent, 1);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _lent, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}

public static class KestrelBlocks
{
    public const string Key = "Wharf:Kestrel:BlockKiB";
    public const int DefaultKiB = 64;

    /// <summary>Kestrel's pool with <see cref="Key"/> KiB blocks (<see cref="DefaultKiB"/> unless set); 0 or 4: Kestrel's own 4 KiB pool.</summary>
    public static void Configure(Microsoft.AspNetCore.Builder.WebApplicationBuilder builder)
    {
        var kib = builder.Configuration.GetValue(Key, DefaultKiB);
        if (kib > 4)
        {
            builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(new LargeBlockMemoryPoolFactory(kib * 1024));
        }
    }
}
