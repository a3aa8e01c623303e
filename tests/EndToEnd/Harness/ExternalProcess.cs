using System.Diagnostics;
using System.Text;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>What a finished command printed and how it ended.</summary>
public sealed record CommandResult(string Command, int ExitCode, string StdOut, string StdErr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Fails the test with everything the command printed, so a CI log explains itself.</summary>
    public CommandResult EnsureSuccess()
    {
        if (!Succeeded)
        {
            Assert.Fail($"`{Command}` exited {ExitCode}\n--- stdout\n{Tail(StdOut)}\n--- stderr\n{Tail(StdErr)}");
        }
        return this;
    }

    private static string Tail(string text) => text.Length <= 6000 ? text : "…" + text[^6000..];
}

/// <summary>
/// Runs real programs with a hard timeout. A command that overruns is killed by its PID (with its children), so a
/// hung client can never outlive its test.
/// </summary>
public static class ExternalProcess
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(90);

    public static async Task<CommandResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        var args = arguments.ToList();
        var command = fileName + " " + string.Join(' ', args);
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            Assert.Fail($"`{command}` did not finish within {(timeout ?? DefaultTimeout).TotalSeconds:0} s and was killed (pid {process.Id})\n"
                + $"--- stdout\n{stdout}\n--- stderr\n{stderr}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        return new CommandResult(command, process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static void KillTree(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}

public static class CommandResultTasks
{
    public static async Task<CommandResult> EnsureSuccessAsync(this Task<CommandResult> task) => (await task).EnsureSuccess();
}
