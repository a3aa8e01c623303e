using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>
/// A private containerd 1.6 started by hand: its own root, state, gRPC and ttrpc sockets under a fresh /tmp folder,
/// the CRI plugin disabled, no debug or metrics listeners. Stopped by its PID.
/// </summary>
public sealed class ContainerdProcess : IAsyncDisposable
{
    private readonly StringBuilder log = new();
    private readonly Process process;

    private ContainerdProcess(string folder, Process process)
    {
        Folder = folder;
        this.process = process;
    }

    public string Folder { get; }
    public string Address => Path.Combine(Folder, "c.sock");

    public string Log
    {
        get { lock (log) { return log.ToString(); } }
    }

    public static async Task<ContainerdProcess> StartAsync(CancellationToken ct)
    {
        // Short path: unix socket paths must stay under 108 bytes.
        var folder = TempFolders.Create("wharf-ctd-");
        var config = Path.Combine(folder, "config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{folder}/root"
            state = "{folder}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]

            [grpc]
              address = "{folder}/c.sock"

            [ttrpc]
              address = "{folder}/c.ttrpc.sock"

            [debug]
              address = ""

            [metrics]
              address = ""

            [plugins."io.containerd.internal.v1.opt"]
              path = "{folder}/opt"
            """);
        var info = new ProcessStartInfo("containerd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "--config", config, "--root", $"{folder}/root", "--state", $"{folder}/state", "--address", $"{folder}/c.sock" })
        {
            info.ArgumentList.Add(a);
        }
        var process = new Process { StartInfo = info };
        var containerd = new ContainerdProcess(folder, process);
        process.OutputDataReceived += (_, e) => containerd.Append(e.Data);
        process.ErrorDataReceived += (_, e) => containerd.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                if (process.HasExited)
                {
                    Assert.Fail($"containerd exited with {process.ExitCode}\n{containerd.Log}");
                }
                if (File.Exists(containerd.Address)
                    && (await ExternalProcess.RunAsync("ctr", ["--address", containerd.Address, "version"], timeout: TimeSpan.FromSeconds(10), cancellationToken: ct)).Succeeded)
                {
                    return containerd;
                }
                if (deadline.Elapsed > TimeSpan.FromSeconds(30))
                {
                    Assert.Fail($"containerd did not answer within 30 s\n{containerd.Log}");
                }
                await Task.Delay(100, ct);
            }
        }
        catch
        {
            await containerd.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs ctr against this containerd, in a namespace of its own.</summary>
    public Task<CommandResult> CtrAsync(params string[] args) =>
        ExternalProcess.RunAsync("ctr", ["--address", Address, "--namespace", "wharf-e2e", .. args], cancellationToken: TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            _ = SendSignal(process.Id, 15);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                ExternalProcess.KillTree(process);
            }
        }
        process.Dispose();
        TempFolders.TryDelete(Folder);
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                if (log.Length < 1_000_000)
                {
                    log.AppendLine(line);
                }
            }
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}
