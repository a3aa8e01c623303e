using Wharf.Contracts.Bytes;

namespace Wharf.Gateway.Observability;

/// <summary>A read-only pass-through that counts the bytes read (request bodies, byte-service reads).</summary>
internal sealed class CountingReadStream(Stream inner, Action<long>? onDispose = null) : ReadOnlyStream
{
    private bool _disposed;

    public long Count { get; private set; }

    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        Count += n;
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Count += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            onDispose?.Invoke(Count);
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            onDispose?.Invoke(Count);
            await inner.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}
