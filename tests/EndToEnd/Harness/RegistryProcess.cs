using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>
/// The all-in-one registry as a real process (the built <c>Wharf.Silo.dll</c> run by <c>dotnet</c>) on a free
/// loopback port. It can be stopped gracefully (SIGTERM), killed with SIGKILL, and started again on the same data
/// folder and port. <see cref="StartNodeAsync"/> runs a cluster member the same way: a silo or a gateway with its
/// own arguments, ready when a given path answers 200, and killed by its PID once it outlives its lifetime.
/// </summary>
public sealed class RegistryProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly StringBuilder log = new();
    private readonly bool ownsDataPath;
    private Process? process;
    private Timer? watchdog;

    // A cluster member (StartNodeAsync): which assembly, its own arguments, its readiness path and its lifetime.
    private string? assemblyPath;
    private readonly IReadOnlyList<string> arguments = [];
    private readonly string readyPath = "v2/";
    private readonly bool passDataPath = true;
    private readonly TimeSpan? maxLifetime;
    private readonly string scheme = "http";

    private RegistryProcess(string dataPath, int port, bool ownsDataPath)
    {
        DataPath = dataPath;
        Port = port;
        this.ownsDataPath = ownsDataPath;
    }

    private RegistryProcess(string dataPath, int port, string assemblyPath, IReadOnlyList<string> arguments, string readyPath, bool passDataPath, TimeSpan maxLifetime, string scheme)
        : this(dataPath, port, ownsDataPath: true)
    {
        this.scheme = scheme;
        this.assemblyPath = assemblyPath;
        this.arguments = arguments;
        this.readyPath = readyPath;
        this.passDataPath = passDataPath;
        this.maxLifetime = maxLifetime;
    }

    public string DataPath { get; }
    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, as clients write it in image references.</summary>
    public string Host => $"127.0.0.1:{Port}";
    public Uri BaseAddress => new($"{scheme}://{Host}/");

    /// <summary>An https node in Wharf:Tls:Mode=Development: the CA it made in its data folder, which clients trust.</summary>
    public string DevelopmentCaPath => Path.Combine(DataPath, "tls", "ca.crt");
    public int? Pid => process is { HasExited: false } p ? p.Id : null;

    /// <summary>Everything the process printed so far (all starts), for failure messages.</summary>
    public string Log
    {
        get { lock (log) { return log.ToString(); } }
    }

    /// <summary>Starts a registry on a fresh data folder and a free port and waits until <c>/v2/</c> answers.</summary>
    public static async Task<RegistryProcess> StartAsync(CancellationToken ct = default)
    {
        var data = TempFolders.Create("wharf-e2e-data-");
        var registry = new RegistryProcess(data, FreePort(), ownsDataPath: true);
        try
        {
            await registry.StartAgainAsync(ct);
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
        return registry;
    }

    /// <summary>
    /// Starts a cluster member: <c>dotnet ASSEMBLY --urls SCHEME://127.0.0.1:PORT [--Wharf:DataPath=FOLDER] ARGUMENTS</c>
    /// in a fresh folder (deleted on dispose), ready when <paramref name="readyPath"/> answers 200. A process still
    /// running <paramref name="maxLifetime"/> after a start is killed by its PID, whatever the test does. With
    /// <paramref name="scheme"/> <c>https</c> (and Wharf:Tls:Mode=Development in the arguments) readiness is asked
    /// over TLS, trusting only the CA the node made in its data folder.
    /// </summary>
    public static async Task<RegistryProcess> StartNodeAsync(
        string assemblyPath, IReadOnlyList<string> arguments, string readyPath, bool passDataPath, TimeSpan maxLifetime, CancellationToken ct = default,
        string scheme = "http")
    {
        var data = TempFolders.Create("wharf-e2e-node-");
        var node = new RegistryProcess(data, FreePort(), assemblyPath, arguments, readyPath, passDataPath, maxLifetime, scheme);
        try
        {
            await node.StartAgainAsync(ct);
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
        return node;
    }

    /// <summary>Starts the process (again) on the same data folder and port and waits until it serves.</summary>
    /// <param name="assembly">Another build to run from now on (an upgrade in place); null: the same as before.</param>
    /// <param name="servingPath">The path that must answer 200 this time (a retired silo is never ready); null: as at the first start.</param>
    public async Task StartAgainAsync(CancellationToken ct = default, string? assembly = null, string? servingPath = null)
    {
        if (assembly is not null)
        {
            assemblyPath = assembly;
        }
        if (process is { HasExited: false })
        {
            throw new InvalidOperationException("the registry is still running");
        }
        process?.Dispose();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = DataPath,
        };
        info.ArgumentList.Add(assemblyPath ?? SiloAssemblyPath);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"{scheme}://{Host}");
        if (passDataPath)
        {
            info.ArgumentList.Add($"--Wharf:DataPath={DataPath}");
        }
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        info.Environment["Logging__LogLevel__Wharf"] = "Information";
        var p = new Process { StartInfo = info };
        p.OutputDataReceived += (_, e) => Append(e.Data);
        p.ErrorDataReceived += (_, e) => Append(e.Data);
        Append($"==== start pid? port {Port} at {DateTime.UtcNow:O}");
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        process = p;
        if (maxLifetime is { } lifetime)
        {
            watchdog?.Dispose();
            watchdog = new Timer(_ =>
            {
                Append($"==== killed after its lifetime of {lifetime.TotalSeconds:0} s at {DateTime.UtcNow:O}");
                ExternalProcess.KillTree(p);
            }, null, lifetime, Timeout.InfiniteTimeSpan);
        }
        await WaitUntilServingAsync(p, servingPath ?? readyPath, ct);
    }

    private async Task WaitUntilServingAsync(Process p, string path, CancellationToken ct)
    {
        using var http = CreateHttpClient(TimeSpan.FromSeconds(2));
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < StartTimeout)
        {
            ct.ThrowIfCancellationRequested();
            if (p.HasExited)
            {
                Assert.Fail($"the registry exited with {p.ExitCode} while starting\n{Log}");
            }
            try
            {
                using var response = await http.GetAsync(path, ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
            }
            await Task.Delay(100, ct);
        }
        ExternalProcess.KillTree(p);
        Assert.Fail($"the registry did not answer /{path} within {StartTimeout.TotalSeconds} s\n{Log}");
    }

    /// <summary>A client of this process; over https it trusts only <see cref="DevelopmentCaPath"/>.</summary>
    public HttpClient CreateHttpClient(TimeSpan timeout) => new(TrustingHandler()) { BaseAddress = BaseAddress, Timeout = timeout };

    /// <summary>Over https, a certificate is accepted only if it chains to <see cref="DevelopmentCaPath"/> (once it exists).</summary>
    private HttpMessageHandler TrustingHandler() => new SocketsHttpHandler
    {
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || !File.Exists(DevelopmentCaPath)
                    || (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != System.Net.Security.SslPolicyErrors.None)
                {
                    return false;
                }
                using var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(DevelopmentCaPath);
                using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                return chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
            },
        },
    };

    /// <summary>SIGKILL: no shutdown code runs, as in a power cut of the process.</summary>
    public void Kill()
    {
        if (process is { } p)
        {
            ExternalProcess.KillTree(p);
            Append($"==== killed at {DateTime.UtcNow:O}");
        }
    }

    /// <summary>SIGSTOP: the process freezes (no CPU, no answers) with its sockets open, as in a long GC pause or a hung VM.</summary>
    public void Pause()
    {
        if (process is { HasExited: false } p)
        {
            _ = SendSignal(p.Id, 19);
            Append($"==== paused (SIGSTOP) at {DateTime.UtcNow:O}");
        }
    }

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume()
    {
        if (process is { HasExited: false } p)
        {
            _ = SendSignal(p.Id, 18);
            Append($"==== resumed (SIGCONT) at {DateTime.UtcNow:O}");
        }
    }

    /// <summary>The exit code once the process has exited, else null.</summary>
    public int? ExitCode => process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>True while the process runs (a paused one too).</summary>
    public bool IsRunning => process is { HasExited: false };

    /// <summary>SIGTERM and wait for a clean exit; SIGKILL if it does not come within the timeout.</summary>
    public async Task StopAsync(TimeSpan? timeout = null)
    {
        if (process is not { HasExited: false } p)
        {
            return;
        }
        _ = SendSignal(p.Id, 15);
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            await p.WaitForExitAsync(limit.Token);
            Append($"==== stopped with {p.ExitCode} at {DateTime.UtcNow:O}");
        }
        catch (OperationCanceledException)
        {
            ExternalProcess.KillTree(p);
            Assert.Fail($"the registry did not stop within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds} s of SIGTERM\n{Log}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        watchdog?.Dispose();
        if (process is { HasExited: false } p)
        {
            _ = SendSignal(p.Id, 18); // a paused process would not act on SIGTERM
            _ = SendSignal(p.Id, 15);
            if (!p.WaitForExit(10_000))
            {
                ExternalProcess.KillTree(p);
            }
        }
        process?.Dispose();
        // For diagnosing a CI run: WHARF_E2E_LOG_DIR keeps every registry's output after the tests.
        if (System.Environment.GetEnvironmentVariable("WHARF_E2E_LOG_DIR") is { Length: > 0 } logDir)
        {
            Directory.CreateDirectory(logDir);
            await File.WriteAllTextAsync(Path.Combine(logDir, $"registry-{Port}-{Guid.NewGuid():N}.log"), Log);
        }
        if (ownsDataPath)
        {
            TempFolders.TryDelete(DataPath);
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            if (log.Length < 2_000_000)
            {
                log.AppendLine(line);
            }
        }
    }

    /// <summary>A free loopback port outside the ephemeral range (see <see cref="Wharf.Tests.Membership.RedisServer.FreePort"/>).</summary>
    public static int FreePort() => Wharf.Tests.Membership.RedisServer.FreePort();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>The built <c>Wharf.Silo.dll</c> the tests run.</summary>
    public static string SiloAssemblyPath => SiloAssembly.Value;

    /// <summary>The built <c>Wharf.Gateway.dll</c> (src/Gateway), beside the silo's build.</summary>
    public static string GatewayAssemblyPath => GatewayAssembly.Value;

    /// <summary>
    /// The built all-in-one: walk up from the test assembly to the folder holding Cluster.sln, then
    /// src/Silo/bin/&lt;Configuration&gt;/net10.0/Wharf.Silo.dll (the configuration this test was built with first).
    /// </summary>
    private static readonly Lazy<string> SiloAssembly = new(() => BuiltAssembly("Silo", "Wharf.Silo.dll"));

    private static readonly Lazy<string> GatewayAssembly = new(() => BuiltAssembly("Gateway", "Wharf.Gateway.dll"));

    /// <summary>The folder holding Cluster.sln above the test assembly: the repository the tests run from.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
            {
                dir = dir.Parent;
            }
            return dir?.FullName ?? throw new InvalidOperationException($"no Cluster.sln above {AppContext.BaseDirectory}");
        }
    }

    private static string BuiltAssembly(string project, string file)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
        {
            dir = dir.Parent;
        }
        if (dir is null)
        {
            throw new InvalidOperationException($"no Cluster.sln above {AppContext.BaseDirectory}");
        }
#if DEBUG
        string[] configurations = ["Debug", "Release"];
#else
        string[] configurations = ["Release", "Debug"];
#endif
        foreach (var configuration in configurations)
        {
            var path = Path.Combine(dir.FullName, "src", project, "bin", configuration, "net10.0", file);
            if (File.Exists(path))
            {
                return path;
            }
        }
        throw new InvalidOperationException($"{file} is not built under {dir.FullName}/src/{project}/bin (run dotnet build Cluster.sln -c Release)");
    }
}
