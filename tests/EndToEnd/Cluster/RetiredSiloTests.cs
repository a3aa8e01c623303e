using System.Diagnostics;
using System.Net;
using Wharf.Contracts.Placement;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Issue 15, a drained silo stays retired (the Kubernetes scale-down): with <c>Wharf:Node:ExitWhenRemoved=false</c> a
/// drained silo is Removed and stays up — liveness 200, readiness 503 — while everything pushed before pulls back
/// through the gateway; stopped (SIGTERM, exit 0) and started again on the same data folder, as a kubelet would, it
/// stays Removed in the placement view, never Joining, and not ready.
/// </summary>
public sealed class RetiredSiloTests
{
    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    [Fact(Timeout = 150_000)]
    public async Task A_drained_silo_told_not_to_exit_stays_up_retired_and_a_restart_keeps_it_Removed()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(140));
        var ct = deadline.Token;
        var clock = Stopwatch.StartNew();
        await using var cluster = await ClusterProcesses.StartAsync(3, 1, ct, replicas: 2, siloArguments: ["--Wharf:Node:ExitWhenRemoved=false"]);
        using var gateways = new GatewayClients(cluster);
        using var admin = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var formed = clock.Elapsed;

        var images = new List<RawImage>();
        for (var i = 0; i < 4; i++)
        {
            var image = RollingRestartTests.Image($"e2e/retire/r{i}", "v1", [16 << 10, 200 << 10]);
            await ReplicationTests.WithRetriesAsync(() => RollingRestartTests.PushAsync(gateways.All[0], image), ct);
            images.Add(image);
        }

        var victim = cluster.Silos[2];
        var nodeId = victim.NodeId;
        var drain = Stopwatch.StartNew();
        using (var response = await admin.PostAsync(new Uri(cluster.Silos[0].BaseAddress, $"admin/nodes/{nodeId}/drain"), null, ct))
        {
            Assert.True(response.IsSuccessStatusCode, $"drain {nodeId}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        }
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(90), async () =>
        {
            // Repair passes now rather than at their interval: the hand-off and the drained report come sooner.
            await Task.WhenAll(cluster.Silos.Take(2).Select(s => ElasticTests.RunPassAsync(admin, s, ct)));
            try
            {
                await ElasticTests.RunPassAsync(admin, victim, ct);
            }
            catch (HttpRequestException)
            {
                // Stopping, or already the retired host, which has no /admin/repair.
            }
            var view = (await cluster.StateAsync(cluster.Silos[0], ct)).View;
            return view.Find(nodeId)?.State == NodeState.Removed && victim.Process.IsRunning
                && (await GetAsync(admin, victim, "readyz", ct)).Status == HttpStatusCode.ServiceUnavailable;
        }, () => $"{nodeId} was not drained and Removed, or did not stay up retired\n{cluster.Logs()}", ct);
        var drained = drain.Elapsed;

        // Retired and idle: alive for the kubelet, not ready, and it stays so.
        await Task.Delay(TimeSpan.FromSeconds(2), ct);
        Assert.True(victim.Process.IsRunning, victim.Process.Log);
        await AssertRetiredAsync(admin, victim, nodeId, ct);
        foreach (var image in images)
        {
            await ReplicationTests.WithRetriesAsync(() => RawOci.AssertServedAsync(gateways.All[0], image), ct);
        }

        var stop = Stopwatch.StartNew();
        await victim.Process.StopAsync(TimeSpan.FromSeconds(20));
        var stopped = stop.Elapsed;
        Assert.Equal(0, victim.Process.ExitCode);
        var epoch = (await cluster.StateAsync(cluster.Silos[0], ct)).View.Epoch;

        // Started again on the same data folder (a pod restarted before the scale-down): it does not rejoin.
        await victim.Process.StartAgainAsync(ct, servingPath: "healthz");
        for (var i = 0; i < 20; i++)
        {
            var view = (await cluster.StateAsync(cluster.Silos[0], ct)).View;
            Assert.Equal(NodeState.Removed, view.Find(nodeId)?.State);
            Assert.Equal(epoch, view.Epoch);
            await AssertRetiredAsync(admin, victim, nodeId, ct);
            await Task.Delay(250, ct);
        }
        Assert.Contains($"node {nodeId} is retired", victim.Process.Log);
        Output?.WriteLine($"cluster formed in {formed.TotalSeconds:0.0} s; drain to Removed and retired {drained.TotalSeconds:0.0} s; SIGTERM to exit 0 in {stopped.TotalSeconds:0.0} s; "
            + $"restarted: Removed at epoch {epoch} for 5 s, readiness 503; total {clock.Elapsed.TotalSeconds:0} s");
    }

    private static async Task AssertRetiredAsync(HttpClient admin, SiloNode silo, string nodeId, CancellationToken ct)
    {
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(admin, silo, "healthz", ct)).Status);
        var (status, body) = await GetAsync(admin, silo, "readyz", ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains($"node {nodeId} was drained and Removed", body);
    }

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, SiloNode silo, string path, CancellationToken ct)
    {
        using var response = await http.GetAsync(new Uri(silo.BaseAddress, path), ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(ct));
    }
}
