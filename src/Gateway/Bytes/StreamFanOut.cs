using System.Buffers;
using System.IO.Pipelines;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// Reads a source stream once and feeds it to several consumers in parallel (DESIGN principle 8: no avoidable
/// copies, one read of the request): each consumer reads its own <see cref="Pipe"/>. The slowest live consumer
/// paces the source (each pipe holds at most <see cref="PauseAt"/> bytes, so memory per write stays bounded however
/// fast the client sends); a consumer that fails completes its pipe and is dropped while the others continue; one
/// that stops draining its pipe for the stall timeout is cancelled and dropped, so a node that hangs without
/// failing cannot hold a write forever.
/// </summary>
public static class StreamFanOut
{
    public const int ChunkSize = 256 * 1024;
    private const long PauseAt = 1024 * 1024;
    private const long ResumeAt = 512 * 1024;

    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>One consumer's outcome: its result, or the failure that dropped it.</summary>
    public readonly record struct Outcome<T>(T? Result, Exception? Error)
    {
        public bool Succeeded => Error is null;
    }

    /// <summary>What the fan-out did: each consumer's outcome, the bytes read from the source, and the source's failure.</summary>
    public sealed record Result<T>(Outcome<T>[] Outcomes, long BytesRead, Exception? SourceError);

    public static async Task<Result<T>> RunAsync<T>(
        Stream source, int consumers, Func<int, Stream, CancellationToken, Task<T>> consume, TimeSpan stallTimeout, CancellationToken cancellationToken)
    {
        var options = new PipeOptions(pauseWriterThreshold: PauseAt, resumeWriterThreshold: ResumeAt, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false);
        var pipes = new Pipe[consumers];
        var cancels = new CancellationTokenSource[consumers];
        var tasks = new Task<T>[consumers];
        for (var i = 0; i < consumers; i++)
        {
            pipes[i] = new Pipe(options);
            cancels[i] = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            tasks[i] = ConsumeAsync(i, pipes[i].Reader, consume, cancels[i].Token);
        }
        long total = 0;
        Exception? sourceError = null;
        var live = new bool[consumers];
        Array.Fill(live, true);
        var liveCount = consumers;
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int n;
            while (liveCount > 0 && (n = await source.ReadAsync(buffer.AsMemory(0, ChunkSize), cancellationToken)) > 0)
            {
                total += n;
                for (var i = 0; i < consumers; i++)
                {
                    if (live[i])
                    {
                        pipes[i].Writer.Write(buffer.AsSpan(0, n));
                    }
                }
                // The flushes run concurrently (each consumer drains its own pipe); awaiting them in turn waits
                // for the slowest.
                for (var i = 0; i < consumers; i++)
                {
                    if (live[i] && !await FlushAsync(pipes[i].Writer, cancels[i], stallTimeout, cancellationToken))
                    {
                        live[i] = false;
                        liveCount--;
                    }
                }
            }
        }
        catch (Exception e)
        {
            sourceError = e;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        for (var i = 0; i < consumers; i++)
        {
            // A source that broke must not look like a short, complete body to a consumer.
            await pipes[i].Writer.CompleteAsync(sourceError is null ? null : new IOException("the request body broke", sourceError));
        }
        var outcomes = new Outcome<T>[consumers];
        for (var i = 0; i < consumers; i++)
        {
            try
            {
                outcomes[i] = new Outcome<T>(await tasks[i], null);
            }
            catch (Exception e)
            {
                outcomes[i] = new Outcome<T>(default, e);
            }
            cancels[i].Dispose();
        }
        return new Result<T>(outcomes, total, sourceError);
    }

    private static async Task<T> ConsumeAsync<T>(int index, PipeReader reader, Func<int, Stream, CancellationToken, Task<T>> consume, CancellationToken ct)
    {
        await Task.Yield(); // The consumers run beside the pump, not inline in its first write.
        try
        {
            var result = await consume(index, reader.AsStream(leaveOpen: true), ct);
            await reader.CompleteAsync();
            return result;
        }
        catch
        {
            // Completed without the exception: a pipe rethrows a reader's exception from the writer's flush, and the
            // pump must see a dropped consumer, not a broken source. The task carries the failure.
            await reader.CompleteAsync();
            throw;
        }
    }

    /// <summary>False when the consumer is gone (it failed or finished) or stalled past the timeout.</summary>
    private static async ValueTask<bool> FlushAsync(PipeWriter writer, CancellationTokenSource consumer, TimeSpan stallTimeout, CancellationToken request)
    {
        try
        {
            var flush = writer.FlushAsync();
            if (flush.IsCompleted)
            {
                return !flush.Result.IsCompleted;
            }
            consumer.CancelAfter(stallTimeout);
            var result = await flush;
            consumer.CancelAfter(Timeout.InfiniteTimeSpan);
            return !result.IsCompleted;
        }
        catch (Exception) when (!request.IsCancellationRequested)
        {
            return false;
        }
    }
}
