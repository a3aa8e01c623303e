using System.Diagnostics;
using System.Net;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// A silo asked to stop while its membership store hangs: Orleans writes the silo's status there on the way down and,
/// with Redis unanswering, kept the process up for ~2 minutes (past compose's and Kubernetes' grace periods, which end
/// in SIGKILL). The node's stop watchdog (<c>Wharf:Node:StopTimeoutSeconds</c>) closes the store and exits.
/// </summary>
public sealed class StopTimeoutTests
{
    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    [Fact(Timeout = 180_000)]
    public async Task A_silo_whose_membership_store_hangs_exits_within_its_stop_timeout_and_keeps_what_it_acknowledged()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(1, 1, ct, siloArguments: ["--Wharf:Node:StopTimeoutSeconds=10"]);
        using var gateways = new GatewayClients(cluster);
        var silo = cluster.Silos[0];
        var view = (await cluster.StateAsync(silo, ct)).View;
        var image = await PlacedImages.PushAsync(gateways.All[0], view, "e2e/stop/hung-store", silo.NodeId, silo.NodeId);

        // Redis frozen with its port open: every membership write on the way down waits for its timeout.
        cluster.Redis.Pause();
        var clock = Stopwatch.StartNew();
        // Without the watchdog this silo took 126 s (the same steps by hand); 10 s and the store's close are the goal.
        await silo.Process.StopAsync(TimeSpan.FromSeconds(40));
        var stopped = clock.Elapsed;
        Output?.WriteLine($"SIGTERM with Redis frozen: exited {silo.Process.ExitCode} after {stopped.TotalSeconds:0.0} s");
        Assert.Equal(0, silo.Process.ExitCode);
        Assert.Contains("store closed; exiting", silo.Process.Log);

        // Redis answers again; the silo restarts on its data folder and serves what it acknowledged, byte for byte.
        // The node id's lease could not be given back to a frozen store: a restart waits for it to run out, as after
        // a crash (a process started sooner refuses, "held by another live process").
        cluster.Redis.Resume();
        var leaseLeft = Wharf.Membership.Topology.NodeRegistration.LeaseTtl + TimeSpan.FromSeconds(1) - clock.Elapsed;
        if (leaseLeft > TimeSpan.Zero)
        {
            await Task.Delay(leaseLeft, ct);
        }
        await silo.Process.StartAgainAsync(ct);
        await cluster.WaitUntilFormedAsync(TimeSpan.FromSeconds(60), ct);
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
        {
            var (status, _, response) = await RawOci.GetAsync(gateways.All[0], $"v2/{image.Repository}/blobs/{image.Blobs[1].Digest}", ct);
            response.Dispose();
            return status == HttpStatusCode.OK;
        }, () => $"the image is not served after the restart\n{cluster.Logs()}", ct);
        await RawOci.AssertServedAsync(gateways.All[0], image);
    }
}
