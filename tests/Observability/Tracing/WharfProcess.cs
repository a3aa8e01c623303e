using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Wharf.Tests.Observability.Tracing;

/// <summary>
/// A built Wharf host (<c>Wharf.Silo.dll</c> or <c>Wharf.Gateway.dll</c>) run by <c>dotnet</c> as a real process on
/// free loopback ports; killed by its process id on dispose. Its output is kept for failure messages.
/// </summary>
public sealed class WharfProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private WharfProcess(Process process, int httpPort)
    {
        _process = process;
        HttpPort = httpPort;
    }

    public int HttpPort { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{HttpPort}/");

    public string Log
    {
        get { lock (_log) { return _log.ToString(); } }
    }

    public static WharfProcess Start(string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        var httpPort = FreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(BuiltAssembly(assembly));
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{httpPort}");
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (k, v) in environment)
        {
            info.Environment[k] = v;
        }
        var process = new Process { StartInfo = info };
        var result = new WharfProcess(process, httpPort);
        process.OutputDataReceived += (_, e) => result.Append(e.Data);
        process.ErrorDataReceived += (_, e) => result.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Waits until <c>/readyz</c> answers 200.</summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(3) };
        var clock = Stopwatch.StartNew();
        string last = "";
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                Assert.Fail($"exited with {_process.ExitCode} while starting\n{Log}");
            }
            try
            {
                using var r = await http.GetAsync("readyz", ct);
                last = $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync(ct)}";
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
            }
            await Task.Delay(200, ct);
        }
        Assert.Fail($"not ready within {timeout.TotalSeconds} s (last /readyz: {last})\n{Log}");
    }

    /// <summary>A free loopback port outside the ephemeral range (see <see cref="Wharf.Tests.Membership.RedisServer.FreePort"/>).</summary>
    public static int FreePort() => Wharf.Tests.Membership.RedisServer.FreePort();

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }

    /// <summary>src/{Silo,Gateway}/bin/&lt;configuration&gt;/net10.0/{assembly}, found from the folder holding Cluster.sln.</summary>
    private static string BuiltAssembly(string assembly)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
        {
            dir = dir.Parent;
        }
        if (dir is null)
        {
            throw new InvalidOperationException("Cluster.sln not found above " + AppContext.BaseDirectory);
        }
        var project = assembly.Contains("Gateway", StringComparison.Ordinal) ? "Gateway" : "Silo";
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(dir.FullName, "src", project, "bin", configuration, "net10.0", assembly);
        return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is not built");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
