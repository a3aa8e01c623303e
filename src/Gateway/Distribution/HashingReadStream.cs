using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Distribution;

/// <summary>Feeds every byte read through it into a resumable hash: the gateway hashes an upload once, as it streams.</summary>
internal sealed class HashingReadStream(Stream inner, ResumableHash hash) : ReadOnlyStream
{
    public long BytesRead { get; private set; }

    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        hash.Append(buffer[..n]);
        BytesRead += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        hash.Append(buffer.Span[..n]);
        BytesRead += n;
        return n;
    }
}
