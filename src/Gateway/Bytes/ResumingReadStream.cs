using Wharf.Contracts.Bytes;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// A blob read that survives the death of the node serving it (DESIGN principle 4): when the stream breaks
/// (an I/O error mid-way), it reopens the rest of the range on the next holder, at the position reached, and goes
/// on. The caller sees one unbroken stream of the same bytes (a committed blob is immutable, so every holder has the
/// same bytes at the same offset).
/// </summary>
internal sealed class ResumingReadStream(ReplicaReader.ReplicaSource source, Stream first, long offset, long length) : ReadOnlyStream
{
    private Stream _current = first;
    private long _position;

    // A read that waits longer than ReplicaReader.IdleTimeout for bytes is cancelled, and the stream resumes elsewhere.
    // Reads go straight into the caller's buffer: every source stream here (HTTP/1.1 responses, gRPC calls, files)
    // completes a cancelled read before it returns, so nothing writes into that buffer after this method returned.
    // One timer source serves every read (TryReset between reads); the caller's token cancels it through a
    // registration on the caller's token, which TryReset leaves alone (it drops registrations on the source itself).
    private CancellationTokenSource _stall = new();
    private CancellationTokenRegistration _callerRegistration;
    private CancellationToken _registeredFor;
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
            var token = StallToken(cancellationToken);
            _stall.CancelAfter(ReplicaReader.IdleTimeout);
            try
            {
                n = await _current.ReadAsync(buffer, token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Broken, or silent for too long (a paused process): as broken either way.
                ResetStall(stalled: e is OperationCanceledException);
                await ResumeAsync(cancellationToken);
                continue;
            }
            ResetStall(stalled: false);
            if (n == 0 && _position < length)
            {
                // Ended early without an error: the node is as good as broken for this read.
                await ResumeAsync(cancellationToken);
                continue;
            }
            _position += n;
            return n;
        }
    }

    /// <summary>The stall timer's token, which the caller's token cancels too (registered once per caller's token).</summary>
    private CancellationToken StallToken(CancellationToken caller)
    {
        caller.ThrowIfCancellationRequested();
        if (caller.CanBeCanceled && caller != _registeredFor)
        {
            _callerRegistration.Dispose();
            _callerRegistration = caller.UnsafeRegister(static state =>
            {
                try
                {
                    ((ResumingReadStream)state!)._stall.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The stream is done.
                }
            }, this);
            _registeredFor = caller;
        }
        return _stall.Token;
    }

    private void ResetStall(bool stalled)
    {
        if (!stalled && _stall.TryReset())
        {
            return;
        }
        // Fired (or about to): a fresh timer.
        _stall.Dispose();
        _stall = new CancellationTokenSource();
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

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _current.Dispose();
            _callerRegistration.Dispose();
            _stall.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _current.DisposeAsync();
        _callerRegistration.Dispose();
        _stall.Dispose();
        await base.DisposeAsync();
    }
}
