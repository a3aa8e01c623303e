namespace Wharf.Gateway.Bytes;

/// <summary>
/// A blob read that survives the death of the node serving it (DESIGN principle 4): when the stream breaks
/// (an I/O error mid-way), it reopens the rest of the range on the next holder, at the position reached, and goes
/// on. The caller sees one unbroken stream of the same bytes (a committed blob is immutable, so every holder has the
/// same bytes at the same offset).
/// </summary>
internal sealed class ResumingReadStream(ReplicaReader.ReplicaSource source, Stream first, long offset, long length) : Stream
{
    private Stream _current = first;
    private long _position;

    // Reads land here first: a read abandoned on a stalled node must never write into the caller's buffer later.
    private byte[] _buffer = new byte[64 * 1024];

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            int n;
            var read = _current.ReadAsync(_buffer.AsMemory(0, Math.Min(buffer.Length, _buffer.Length)), cancellationToken);
            try
            {
                // A node that stops sending mid-way (a paused process) is as broken as one that failed.
                n = read.IsCompletedSuccessfully ? read.Result : await read.AsTask().WaitAsync(ReplicaReader.IdleTimeout, cancellationToken);
            }
            catch (IOException) when (!cancellationToken.IsCancellationRequested)
            {
                await ResumeAsync(cancellationToken);
                continue;
            }
            catch (TimeoutException)
            {
                // The abandoned read may still complete into the old buffer: this stream never reads it again.
                _buffer = new byte[_buffer.Length];
                await ResumeAsync(cancellationToken);
                continue;
            }
            if (n == 0 && _position < length)
            {
                // Ended early without an error: the node is as good as broken for this read.
                await ResumeAsync(cancellationToken);
                continue;
            }
            _buffer.AsSpan(0, n).CopyTo(buffer.Span);
            _position += n;
            return n;
        }
    }

    private async Task ResumeAsync(CancellationToken ct)
    {
        if (source.Current is { } broken)
        {
            source.Failed(broken);
        }
        await _current.DisposeAsync();
        _current = Stream.Null;
        var next = await source.OpenNextAsync(offset + _position, length - _position, ct);
        _current = next ?? throw new IOException($"the blob stream broke at byte {offset + _position} and no other node has the rest");
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _current.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _current.DisposeAsync();
        await base.DisposeAsync();
    }
}
