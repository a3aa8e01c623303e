using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Wharf.Tests.Membership;

/// <summary>
/// A real <c>redis-server</c> (Debian's, installed by test.sh and .ci/run) on a free loopback port, in a temporary
/// folder, with persistence off; killed by its process id on dispose.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private const string Binary = "/usr/bin/redis-server";
    private readonly Process _process;
    private readonly string _folder;

    private RedisServer(Process process, string folder, int port, string? password)
    {
        _process = process;
        _folder = folder;
        Port = port;
        Password = password;
    }

    public int Port { get; }

    public string? Password { get; }

    public string Address => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync(string? password = null)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException($"{Binary} is missing: install Debian's redis-server (test.sh does, as root)");
        }
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var folder = Directory.CreateTempSubdirectory("wharf-redis-").FullName;
            var start = new ProcessStartInfo(Binary)
            {
                WorkingDirectory = folder,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var arg in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--dir", folder, "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no" })
            {
                start.ArgumentList.Add(arg);
            }
            if (password is not null)
            {
                start.ArgumentList.Add("--requirepass");
                start.ArgumentList.Add(password);
            }
            var process = Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new RedisServer(process, folder, port, password);
            if (await server.WaitUntilListeningAsync(TimeSpan.FromSeconds(10)))
            {
                return server;
            }
            await server.DisposeAsync();
            if (attempt == 3)
            {
                throw new InvalidOperationException($"redis-server did not start listening on 127.0.0.1:{port}");
            }
        }
    }

    /// <summary>SIGSTOP: Redis freezes with its port open, so clients connect and then wait (a hung or partitioned store).</summary>
    public void Pause() => _ = SendSignal(_process.Id, 19);

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => _ = SendSignal(_process.Id, 18);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    public ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }

    private async Task<bool> WaitUntilListeningAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return true;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }
        return false;
    }

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A loopback port nobody listens on, below the kernel's ephemeral range (32768–60999 on Linux): a port the kernel
    /// hands out (bind to 0) may be taken by some process's outgoing connection before our server binds it, which
    /// happened with many gRPC connections between silos. Never the same port twice in one test process.
    /// </summary>
    public static int FreePort()
    {
        for (var attempt = 0; attempt < 500; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            lock (HandedOut)
            {
                if (HandedOut.Contains(port))
                {
                    continue;
                }
            }
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
            }
            catch (SocketException)
            {
                continue;
            }
            lock (HandedOut)
            {
                if (HandedOut.Add(port))
                {
                    return port;
                }
            }
        }
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
