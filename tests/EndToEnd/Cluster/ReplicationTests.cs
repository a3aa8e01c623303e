using System.Diagnostics;
using System.Net;
using Wharf.Contracts.Placement;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// R = 3, W = 2 on 3 silos and 2 gateways (real processes, Redis membership): no single silo matters (DESIGN
/// principles 4 and 5). Each test has a cluster of its own, so what it stops or kills reaches no other test.
/// CI asserts the invariants (nothing acknowledged lost, nothing corrupt served); client-visible errors are reported.
/// </summary>
public sealed class ReplicationTests
{
    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    [Fact(Timeout = 240_000)]
    public async Task A_silo_paused_until_declared_dead_gives_up_its_repositories_and_after_it_resumes_nothing_acknowledged_is_lost()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct, replicas: 3);
        using var gateways = new GatewayClients(cluster);
        var (a, b) = (gateways.All[0], gateways.All[1]);
        var view = (await cluster.StateAsync(cluster.Silos[0], ct)).View;
        var victim = cluster.Silos[2];
        var victimId = victim.NodeId;
        var live = view.Nodes.First(n => n.NodeId != victimId).NodeId;

        // Repositories led from the victim (their grains run there), with tags pushed while it is up.
        var repositories = PlacedImages.RepositoriesOwnedBy(view, victimId, 2, "e2e/paused/r").ToList();
        var before = new List<RawImage>();
        foreach (var repository in repositories)
        {
            before.Add(await PlacedImages.PushAsync(a, view, repository, live, live));
        }

        var moved = new List<RawImage>();
        var clock = Stopwatch.StartNew();
        victim.Process.Pause();
        try
        {
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
                (await cluster.StateAsync(cluster.Silos[0], ct)).StatusesOf(victim.SiloEndpoint) == "Dead",
                () => $"the paused silo is not declared Dead\n{cluster.Logs()}", ct);
            Output?.WriteLine($"SIGSTOP: declared Dead after {clock.Elapsed.TotalSeconds:0.0} s");

            // Its repositories are led from another owner now: served, and a tag moves (acknowledged by W = 2).
            var errors = 0;
            foreach (var image in before)
            {
                await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
                {
                    var (status, _, response) = await RawOci.GetAsync(b, $"v2/{image.Repository}/manifests/{image.Tag}", ct);
                    response.Dispose();
                    errors += status == HttpStatusCode.OK ? 0 : 1;
                    return status == HttpStatusCode.OK;
                }, () => $"{image.Repository} is not served after its leader's silo was declared dead\n{cluster.Logs()}", ct);
                await RawOci.AssertServedAsync(b, image);
                var next = await PlacedImages.PushAsync(b, view, image.Repository, live, live, tag: "v2");
                await RawOci.PutManifestAsync(a, image.Repository, "v1", next.Manifest);
                moved.Add(next with { Tag = "v1" });
            }
            Output?.WriteLine($"while paused: repositories served and tags moved {clock.Elapsed.TotalSeconds:0.0} s after SIGSTOP ({errors} answers other than 200 while the grains moved)");
        }
        finally
        {
            victim.Process.Resume();
        }

        // The resumed silo finds itself declared dead; whatever its stale activations still try, the owners that
        // promised the new leaders' ballots refuse it. Give it time to try, then read everything through both gateways.
        await Task.Delay(TimeSpan.FromSeconds(3), ct);
        foreach (var http in gateways.All)
        {
            foreach (var image in moved)
            {
                await RawOci.AssertServedAsync(http, image);
                await RawOci.AssertServedAsync(http, image with { Tag = "v2" });
            }
        }
        Output?.WriteLine($"after SIGCONT: the victim is {(victim.Process.IsRunning ? "still running" : "gone (it found itself dead)")}");
    }
}
