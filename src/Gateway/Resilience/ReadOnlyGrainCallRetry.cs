using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime.Messaging;
using Wharf.Gateway.Observability;

namespace Wharf.Gateway.Resilience;

/// <summary>
/// Asks a <c>[ReadOnly]</c> grain call again when Orleans rejected it because the grain was moving: its silo is
/// shutting down (a rolling restart sends SIGTERM), or went away, and this gateway or the silo that forwarded the call
/// still placed it there. Within a second or two membership tells every silo, the placement director picks the
/// repository's next active owner, and the call succeeds there — so a pull sees one slower answer instead of a 503.
/// Only read-only calls are asked again: running one twice changes nothing (a tag lease granted twice is one lease).
/// A call that keeps being rejected for about 2.5 s surfaces as before (503 UNAVAILABLE with Retry-After), so data
/// whose owners are all down still answers quickly. Time-outs are not retried: the call already waited its bound.
/// </summary>
public sealed class ReadOnlyGrainCallRetry(WharfMetrics metrics, ILogger<ReadOnlyGrainCallRetry> logger) : IOutgoingGrainCallFilter
{
    /// <summary>Pauses before each new attempt: 2.55 s in all, beyond the membership update a graceful shutdown publishes.</summary>
    private static readonly TimeSpan[] Pauses = [.. new[] { 50, 100, 200, 400, 800, 1000 }.Select(ms => TimeSpan.FromMilliseconds(ms))];

    private static readonly ConcurrentDictionary<MethodInfo, bool> ReadOnlyMethods = new();

    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        var readOnly = ReadOnlyMethods.GetOrAdd(context.InterfaceMethod, m => m.GetCustomAttribute<ReadOnlyAttribute>() is not null);
        var clock = Stopwatch.StartNew();
        for (var attempt = 0; ; attempt++)
        {
            ExceptionDispatchInfo? thrown = null;
            try
            {
                await context.Invoke();
            }
            catch (Exception e)
            {
                thrown = ExceptionDispatchInfo.Capture(e);
            }
            var failure = thrown?.SourceException ?? context.Response?.Exception;
            // A read is asked again after any rejection; any call after a grain that moved (it did nothing).
            if (failure is null || !(readOnly ? IsRejection(failure) : IsMoved(failure)) || attempt == Pauses.Length)
            {
                if (attempt > 0)
                {
                    var outcome = failure is null ? "ok" : "failed";
                    metrics.GrainCallRetries.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
                    logger.LogDebug("{Method} on {Grain}: {Outcome} after {Attempts} attempts in {Elapsed} ms",
                        context.MethodName, context.TargetId, outcome, attempt + 1, clock.ElapsedMilliseconds);
                }
                thrown?.Throw();
                return;
            }
            await Task.Delay(Pauses[attempt]);
        }
    }

    /// <summary>Orleans refused to deliver the call (SiloUnavailableException is one), or the connection to a silo broke.</summary>
    private static bool IsRejection(Exception e) => e switch
    {
        OrleansMessageRejectionException or ConnectionFailedException or Contracts.Grains.GrainMovedException => true,
        _ => e.InnerException is { } inner && IsRejection(inner),
    };

    private static bool IsMoved(Exception e) =>
        e is Contracts.Grains.GrainMovedException || (e.InnerException is { } inner && IsMoved(inner));
}
