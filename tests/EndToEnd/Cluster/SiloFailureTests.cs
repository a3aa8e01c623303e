using System.Diagnostics;
using System.Net;
using System.Text;
using Wharf.Contracts.Placement;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Silos that stop, die and join, each test on a cluster of its own (3 silos, 2 gateways, Redis), so nothing it
/// stops or kills reaches another test. R = 1: data whose owner is down answers 503 with Retry-After.
/// </summary>
public sealed class SiloFailureTests
{
    /// <summary>Longer than any answer may take while a silo is down: a 503 must come quickly, never a hang.</summary>
    private static readonly TimeSpan QuickAnswer = TimeSpan.FromSeconds(10);

    /// <summary>The gateways' tag lease (Wharf:Gateway:TagLeaseSeconds, 5 s by default) and a margin.</summary>
    private static readonly TimeSpan TagLeaseAndMargin = TimeSpan.FromSeconds(6);

    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    [Fact(Timeout = 180_000)]
    public async Task A_silo_stopped_with_SIGTERM_leaves_its_data_answers_503_meanwhile_and_is_served_again_after_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct);
        using var gateways = new GatewayClients(cluster);
        var victim = cluster.Silos[2];
        var data = await PushDataAsync(cluster, gateways.All[0], victim, ct);
        foreach (var http in gateways.All)
        {
            foreach (var image in data.All)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }

        var clock = Stopwatch.StartNew();
        await victim.Process.StopAsync(TimeSpan.FromSeconds(30));
        var stopped = clock.Elapsed;
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            !(await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(victim.SiloEndpoint),
            () => $"{victim.SiloEndpoint} is still Active after SIGTERM\n{cluster.Logs()}", ct);
        Output?.WriteLine($"SIGTERM: exited in {stopped.TotalSeconds:0.0} s, not Active in membership after {clock.Elapsed.TotalSeconds:0.0} s "
            + $"({(await cluster.StateAsync(cluster.Silos[0], ct)).StatusesOf(victim.SiloEndpoint)})");

        // A gateway may answer a manifest it resolved under a lease until that lease runs out (DESIGN principle 7:
        // the victim cannot revoke it); after that, what lives only on the victim answers 503.
        await Task.Delay(TagLeaseAndMargin, ct);
        foreach (var http in gateways.All)
        {
            await AssertDownAsync(http, data, crossingCached: true, ct);
        }

        clock.Restart();
        await victim.Process.StartAgainAsync(ct);
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            (await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(victim.SiloEndpoint),
            () => $"{victim.SiloEndpoint} is not Active again after a restart\n{cluster.Logs()}", ct);
        var active = clock.Elapsed;
        // Its data is served again through both gateways (their Orleans clients learn of the new silo first).
        foreach (var http in gateways.All)
        {
            foreach (var image in data.OnVictim)
            {
                await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
                    // The manifest (its body may come from the gateway's cache) and a blob whose bytes are on the
                    // victim: the gateway's connection to it is back too.
                    (await StatusAsync(http, $"v2/{image.Repository}/manifests/{image.Tag}", ct)) == HttpStatusCode.OK
                    && (await StatusAsync(http, $"v2/{image.Repository}/blobs/{image.Blobs[1].Digest}", ct)) == HttpStatusCode.OK,
                    () => $"{image.Repository} is not served through {http.BaseAddress} after the restart\n{cluster.Logs()}", ct);
            }
        }
        Output?.WriteLine($"restart: Active again after {active.TotalSeconds:0.0} s, its data served through both gateways after {clock.Elapsed.TotalSeconds:0.0} s");
        foreach (var http in gateways.All)
        {
            foreach (var image in data.All)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task A_killed_silo_is_declared_dead_in_time_a_new_silo_joins_and_live_data_is_served()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct);
        using var gateways = new GatewayClients(cluster);
        var victim = cluster.Silos[2];
        var data = await PushDataAsync(cluster, gateways.All[0], victim, ct);

        // Live data is checked once the death is declared and again after the new silo joined, not continuously: under
        // heavy CPU load (load average ~40 on 2 cores) a read of live data sent around the kill sometimes got no
        // answer for 19 s, a known gap (probably an Orleans request in flight towards the dead silo waiting for its
        // response timeout) that a continuous reader would turn into a flaky failure.
        var clock = Stopwatch.StartNew();
        victim.Process.Kill();
        string statuses = "";
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
        {
            var state = await cluster.StateAsync(cluster.Silos[0], ct);
            statuses = state.StatusesOf(victim.SiloEndpoint);
            return statuses == "Dead";
        }, () => $"{victim.SiloEndpoint} is not declared Dead ({statuses})\n{cluster.Logs()}", ct);
        var dead = clock.Elapsed;
        Output?.WriteLine($"kill -9: declared Dead after {dead.TotalSeconds:0.0} s (ProbeTimeout 1 s, NumMissedProbesLimit 2, NumVotesForDeathDeclaration 1)");
        // The configured detection: two missed 1 s probes and one vote, plus a table refresh; generous for CI.
        Assert.True(dead < TimeSpan.FromSeconds(15), $"declared Dead only after {dead.TotalSeconds:0.0} s");

        // A gateway may answer a manifest it resolved under a lease until that lease runs out (DESIGN principle 7:
        // the victim cannot revoke it); after that, what lives only on the victim answers 503.
        await Task.Delay(TagLeaseAndMargin, ct);
        foreach (var http in gateways.All)
        {
            await AssertDownAsync(http, data, crossingCached: false, ct);
        }

        clock.Restart();
        var newcomer = await cluster.StartSiloAsync(ct);
        var nodeId = newcomer.NodeId;
        PlacementNode? inView = null;
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
        {
            var state = await cluster.StateAsync(cluster.Silos[0], ct);
            inView = state.View.Find(nodeId);
            return inView is { State: NodeState.Joining } && state.IsActive(newcomer.SiloEndpoint);
        }, () => $"the new silo is not Joining in the view and Active in membership ({inView})\n{cluster.Logs()}", ct);
        Output?.WriteLine($"a fourth silo: Joining in the view and Active in membership {clock.Elapsed.TotalSeconds:0.0} s after its process started");
        foreach (var http in gateways.All)
        {
            foreach (var image in data.Live)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }
    }

    /// <summary>
    /// While the victim is down: its repositories answer 503 UNAVAILABLE with Retry-After, quickly; a blob whose bytes
    /// it holds, in a repository on a live silo, answers 503 as quickly — or, when this gateway served it before, comes
    /// from the gateway's blob cache; everything wholly on live silos is served unchanged.
    /// </summary>
    private static async Task AssertDownAsync(HttpClient http, Dataset data, bool crossingCached, CancellationToken ct)
    {
        foreach (var image in data.OnVictim)
        {
            await AssertUnavailableAsync(http, $"v2/{image.Repository}/manifests/{image.Tag}", ct);
            await AssertUnavailableAsync(http, $"v2/{image.Repository}/blobs/{image.Blobs[1].Digest}", ct);
        }
        var (status, body, response) = await RawOci.GetAsync(http, $"v2/{data.Crossing.Repository}/manifests/{data.Crossing.Tag}", ct);
        response.Dispose();
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(data.Crossing.Manifest, body);
        var crossing = data.Crossing.Blobs[1];
        if (crossingCached)
        {
            // Its bytes are only on the victim, but this gateway served them before and keeps them
            // (Wharf:Gateway:BlobCacheMiB, DESIGN principle 7); the repository's link is on a live silo, so it is served.
            var (blobStatus, blobBody, blobResponse) = await RawOci.GetAsync(http, $"v2/{data.Crossing.Repository}/blobs/{crossing.Digest}", ct);
            blobResponse.Dispose();
            Assert.True(blobStatus == HttpStatusCode.OK, $"{http.BaseAddress}: the crossing blob, cached before the stop, answered {(int)blobStatus}");
            Assert.Equal(crossing.Bytes, blobBody);
        }
        else
        {
            await AssertUnavailableAsync(http, $"v2/{data.Crossing.Repository}/blobs/{crossing.Digest}", ct);
        }
        foreach (var image in data.Live)
        {
            await RawOci.AssertServedAsync(http, image);
        }
    }

    private static async Task AssertUnavailableAsync(HttpClient http, string path, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var (status, body, response) = await RawOci.GetAsync(http, path, ct);
        using (response)
        {
            var text = Encoding.UTF8.GetString(body);
            Assert.True(status == HttpStatusCode.ServiceUnavailable, $"{http.BaseAddress}{path}: expected 503, got {(int)status} {text}");
            Assert.Contains("UNAVAILABLE", text);
            Assert.NotNull(response.Headers.RetryAfter);
            Assert.True(watch.Elapsed < QuickAnswer, $"{http.BaseAddress}{path}: 503 only after {watch.Elapsed.TotalSeconds:0.0} s");
        }
    }

    private static async Task<HttpStatusCode> StatusAsync(HttpClient http, string path, CancellationToken ct)
    {
        var (status, _, response) = await RawOci.GetAsync(http, path, ct);
        response.Dispose();
        return status;
    }

    /// <summary>
    /// Images on the victim (records, bytes and manifest all owned by it), images wholly on the live silos, and one
    /// crossing image: repository and manifest on a live silo, its layer's bytes on the victim.
    /// </summary>
    private sealed record Dataset(IReadOnlyList<RawImage> OnVictim, IReadOnlyList<RawImage> Live, RawImage Crossing)
    {
        public IEnumerable<RawImage> All => OnVictim.Concat(Live).Append(Crossing);
    }

    private static async Task<Dataset> PushDataAsync(ClusterProcesses cluster, HttpClient http, SiloNode victim, CancellationToken ct)
    {
        var view = (await cluster.StateAsync(cluster.Silos[0], ct)).View;
        var victimId = victim.NodeId;
        var onVictim = new List<RawImage>();
        var live = new List<RawImage>();
        foreach (var node in view.Nodes.Select(n => n.NodeId))
        {
            foreach (var repository in RepositoriesOwnedBy(view, node, 2))
            {
                var image = await PushImageAsync(http, view, repository, node, node);
                (node == victimId ? onVictim : live).Add(image);
            }
        }
        var liveNode = view.Nodes.First(n => n.NodeId != victimId).NodeId;
        var crossing = await PushImageAsync(http, view, RepositoriesOwnedBy(view, liveNode, 3).Last(), liveNode, victimId);
        return new Dataset(onVictim, live, crossing);
    }

    private static IEnumerable<string> RepositoriesOwnedBy(PlacementView view, string nodeId, int count) =>
        PlacedImages.RepositoriesOwnedBy(view, nodeId, count);

    private static Task<RawImage> PushImageAsync(HttpClient http, PlacementView view, string repository, string node, string layerNode) =>
        PlacedImages.PushAsync(http, view, repository, node, layerNode);
}
