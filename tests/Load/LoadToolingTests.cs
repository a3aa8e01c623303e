using System.Diagnostics;
using System.Text;

namespace Wharf.Tests.Load;

/// <summary>
/// Keeps the load tooling from rotting (docs/DESIGN "Testing layers"): the k6 scripts type-check against
/// @types/k6 and pass under the Node shim against a real all-in-one, and the side-by-side benchmark's smoke
/// runs end to end and prints both columns and the ratios. No timing is asserted: only that each command works.
/// </summary>
public sealed class LoadToolingTests
{
    [Fact(Timeout = 240_000)]
    public async Task K6ScriptsTypeCheckAndPassUnderTheShim()
    {
        var (code, output) = await Run(Path.Combine(Root, "loadtest", "check-k6.sh"), new Dictionary<string, string>(), TimeSpan.FromMinutes(5), TestContext.Current.CancellationToken);
        Assert.True(code == 0, $"loadtest/check-k6.sh exited {code}:\n{output}");
        Assert.Contains("== all k6 scripts passed", output);
        foreach (var script in new[] { "push.js", "pull.js", "mixed.js", "listing.js", "fanout.js" })
            Assert.Contains($"{script}: ", output);
        Assert.DoesNotContain("FAILED", output);
    }

    [Fact(Timeout = 330_000)]
    public async Task BenchmarkSmokePrintsBothColumnsAndRatios()
    {
        var env = new Dictionary<string, string> { ["SMOKE"] = "1", ["MODES"] = "allinone split cluster" };
        var (code, output) = await Run(Path.Combine(Root, "loadtest", "bench", "run.sh"), env, TimeSpan.FromMinutes(5), TestContext.Current.CancellationToken);
        Assert.True(code == 0, $"SMOKE=1 loadtest/bench/run.sh exited {code}:\n{output}");
        Assert.Contains("Wharf all-in-one vs CNCF Distribution", output);
        Assert.Contains("Wharf gateway + silo", output);
        Assert.Contains("Wharf 3 silos (R = 3, W = 2) + 2 gateways", output);
        Assert.Contains("| Wharf/Dist |", output);
        Assert.Contains("manifest GET by tag", output);
        Assert.Contains("targets (issue 13):", output);
    }

    [Fact(Timeout = 180_000)]
    public async Task AuthCostSmokePrintsNoneTokenAndTheRatio()
    {
        var env = new Dictionary<string, string> { ["SMOKE"] = "1" };
        var (code, output) = await Run(Path.Combine(Root, "loadtest", "bench", "auth_cost.py"), env, TimeSpan.FromMinutes(2.5), TestContext.Current.CancellationToken);
        Assert.True(code == 0, $"SMOKE=1 loadtest/bench/auth_cost.py exited {code}:\n{output}");
        Assert.Contains("manifest GET by tag", output);
        Assert.Contains("Token / None:", output);
        Assert.Contains("round 1 Token:", output);
        Assert.Contains("errors 0", output);
    }

    [Fact(Timeout = 180_000)]
    public async Task TlsCostSmokePrintsHttpHttpsAndTheRatios()
    {
        var env = new Dictionary<string, string> { ["SMOKE"] = "1" };
        var (code, output) = await Run(Path.Combine(Root, "loadtest", "bench", "tls_cost.py"), env, TimeSpan.FromMinutes(2.5), TestContext.Current.CancellationToken);
        Assert.True(code == 0, $"SMOKE=1 loadtest/bench/tls_cost.py exited {code}:\n{output}");
        Assert.Contains("manifest GET by tag", output);
        Assert.Contains("https / http, keep-alive:", output);
        Assert.Contains("https / http, close:", output);
        Assert.Contains("round 1 https keep-alive:", output);
        Assert.DoesNotContain("wrk errors", output);
    }

    static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException($"no Cluster.sln above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>Runs a command with a hard timeout; on timeout kills its whole process tree.</summary>
    static async Task<(int Code, string Output)> Run(string file, IDictionary<string, string> env, TimeSpan timeout, CancellationToken cancel)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        foreach (var (k, v) in env) psi.Environment[k] = v;
        psi.Environment.Remove("WHARF_URL"); // the scripts start their own registries
        var output = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
            lock (output) return (-1, $"timed out after {timeout}\n{output}");
        }
        p.WaitForExit(); // drains the redirected streams
        lock (output) return (p.ExitCode, output.ToString());
    }
}
