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

    /// <summary>How long the consumers beyond the quorum may take, at least, once the quorum has answered.</summary>
    public static readonly TimeSpan TailGrace = TimeSpan.FromSeconds(5);

    /// <summary>One consumer's outcome: its result, or the failure that dropped it.</summary>
    public readonly record struct Outcome<T>(T? Result, Exception? Error)
    {
        public bool Succeeded => Error is null;
    }

    /// <summary>What the fan-out did: each consumer's outcome, the bytes read from the source, and the source's failure.</summary>
    public sealed record Result<T>(Outcome<T>[] Outcomes, long BytesRead, Exception? SourceError);

    /// <param name="quorum">
    /// Once this many consumers succeeded, the others get <see cref="TailGrace"/> (or as long again as the write took,
    /// if longer) to finish, and are then cancelled: a node that hangs (a paused process) never holds an answer the
    /// quorum already gave. Any consumer still silent <paramref name="stallTimeout"/> after the body ended is cancelled.
    /// </param>
    public static async Task<Result<T>> RunAsync<T>(
        Stream source, int consumers, Func<int, Stream, CancellationToken, Task<T>> consume, TimeSpan stallTimeout, CancellationToken cancellationToken, int? quorum = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
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
        await AwaitQuorumAsync(tasks, cancels, quorum ?? consumers, clock, stallTimeout, cancellationToken);
        var outcomes = new Outcome<T>[consumers];
        for (var i = 0; i < consumers; i++)
        {
            if (!tasks[i].IsCompleted)
            {
                // Ignored its cancellation: it counts as a node that did not answer.
                outcomes[i] = new Outcome<T>(default, new OperationCanceledException("the storage node did not answer"));
                _ = tasks[i].ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
                continue;
            }
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

    /// <summary>
    /// Waits for calls to nodes: all of them, or <paramref name="quorum"/> good ones plus <see cref="TailGrace"/> (or as
    /// long again as <paramref name="clock"/> has run) for the rest, and none longer than <paramref name="stallTimeout"/>;
    /// then cancels the stragglers. A call is good when it succeeded (and <paramref name="good"/> says so of its result).
    /// </summary>
    internal static async Task AwaitQuorumAsync<T>(
        Task<T>[] tasks, CancellationTokenSource[] cancels, int quorum, System.Diagnostics.Stopwatch clock, TimeSpan stallTimeout,
        CancellationToken request, Func<T, bool>? good = null)
    {
        var replyDeadline = Task.Delay(stallTimeout, request);
        while (true)
        {
            var pending = tasks.Where(t => !t.IsCompleted).ToList();
            if (pending.Count == 0)
            {
                return;
            }
            Task wait;
            if (tasks.Count(t => t.IsCompletedSuccessfully && (good is null || good(t.Result))) >= quorum)
            {
                var grace = clock.Elapsed > TailGrace ? clock.Elapsed : TailGrace;
                wait = Task.WhenAny(Task.WhenAll(pending), Task.Delay(grace, request), replyDeadline);
                await wait;
                break;
            }
            wait = await Task.WhenAny([.. pending, replyDeadline]);
            if (wait == replyDeadline)
            {
                break;
            }
        }
        for (var i = 0; i < tasks.Length; i++)
        {
            if (!tasks[i].IsCompleted)
            {
                await cancels[i].CancelAsync();
            }
        }
        // Cancelled calls end promptly; a bound anyway, so nothing here can hang a request.
        try
        {
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        }
        catch (Exception)
        {
        }
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
