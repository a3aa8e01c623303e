using System.Runtime.InteropServices;

namespace Wharf.Silo;

/// <summary>
/// Bounds how long a node takes to stop. On the way down Orleans' membership agent writes the silo's status to the
/// membership store (ShuttingDown, Stopping, Dead); with the store unreachable (Redis or Consul down, a partition) it
/// retries for a minute and then waits a hard-coded minute more, ignoring the host's shutdown token: the silo took
/// ~2 minutes to exit and the orchestrator's SIGKILL came first, cutting the log. Once armed (the host begins to stop)
/// and <c>limit</c> has passed without the host stopping, the watchdog logs why, closes the node's store (RocksDB;
/// blob files are already durable when acknowledged) and ends the process at once with exit code 0. Nothing
/// acknowledged depends on the rest of the stop: other silos declare this one dead by their own probes.
/// </summary>
public sealed class StopWatchdog(TimeSpan limit, Action closeStores, ILogger logger, IReadOnlyList<ILoggerProvider> logs) : IDisposable
{
    private readonly CancellationTokenSource _disarm = new();
    private int _armed;

    /// <summary>Starts the countdown (once; later calls do nothing).</summary>
    public void Arm()
    {
        if (limit <= TimeSpan.Zero || Interlocked.Exchange(ref _armed, 1) != 0)
        {
            return;
        }
        var token = _disarm.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(limit, token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            Fire();
        }, CancellationToken.None);
    }

    /// <summary>The host stopped by itself: no exit (a drained node may go on as a retired one).</summary>
    public void Dispose()
    {
        _disarm.Cancel();
        _disarm.Dispose();
    }

    private void Fire()
    {
        logger.LogWarning(
            "the node has not stopped {Seconds} s after it was asked to (Wharf:Node:StopTimeoutSeconds; Orleans waits on an unreachable membership store): closing the store and exiting",
            limit.TotalSeconds);
        try
        {
            closeStores();
            logger.LogWarning("store closed; exiting");
        }
        catch (Exception e)
        {
            logger.LogError(e, "closing the store failed; exiting");
        }
        foreach (var provider in logs)
        {
            provider.Dispose(); // the console logger writes its queue out
        }
        Console.Out.Flush();
        Console.Error.Flush();
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            // Not Environment.Exit: the host's ProcessExit handler would wait up to twice its shutdown timeout more.
            ExitNow(0);
        }
        Environment.Exit(0);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);
}
