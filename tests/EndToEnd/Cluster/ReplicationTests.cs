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

    [Fact(Timeout = 240_000)]
    public async Task With_one_silo_down_every_push_through_alternating_gateways_is_acknowledged_and_with_two_down_pushes_answer_503()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct, replicas: 3);
        using var gateways = new GatewayClients(cluster);

        var first = cluster.Silos[2];
        await first.Process.StopAsync(TimeSpan.FromSeconds(30));
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            !(await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(first.SiloEndpoint),
            () => $"{first.SiloEndpoint} is still Active after SIGTERM\n{cluster.Logs()}", ct);

        // Every push acknowledged with one of three silos down: monolithic and chunked, each request through the
        // other gateway from the one before.
        var pushed = new List<RawImage>();
        var retries = 0;
        for (var i = 0; i < 8; i++)
        {
            var image = RandomImage($"e2e/one-down/r{i % 4}", $"t{i}");
            retries += await WithRetriesAsync(() => PushAsync(gateways.All, image, chunked: i % 2 == 1, i), ct);
            pushed.Add(image);
        }
        // Every acknowledged push pulls back byte-identical through both gateways. A pull may meet a 503 while the
        // gateways' Orleans clients and grain placement settle after the stop (a rare, client-visible error in full
        // suite runs): counted and reported, and the pull is asked again; the bytes are the invariant.
        var unavailable = 0;
        async Task AssertServedSoonAsync(HttpClient http, RawImage image, string when)
        {
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
            {
                foreach (var path in image.Blobs.Select(b => $"v2/{image.Repository}/blobs/{b.Digest}").Prepend($"v2/{image.Repository}/manifests/{image.Tag}"))
                {
                    var (status, _, response) = await RawOci.GetAsync(http, path, ct);
                    response.Dispose();
                    if (status != HttpStatusCode.OK)
                    {
                        unavailable++;
                        return false;
                    }
                }
                return true;
            }, () => $"{image.Repository}:{image.Tag} is not served through {http.BaseAddress} {when}\n{cluster.Logs()}", ct);
            await RawOci.AssertServedAsync(http, image);
        }
        foreach (var http in gateways.All)
        {
            foreach (var image in pushed)
            {
                await AssertServedSoonAsync(http, image, "with one silo down");
            }
        }
        Output?.WriteLine($"one silo down: {pushed.Count} images pushed through alternating gateways, {retries} request(s) retried after 503; "
            + $"{unavailable} pull answer(s) other than 200 before each image was served through both gateways");

        // Two of three down: fewer than W = 2 owners can take a write, so the client is told to come back later.
        var second = cluster.Silos[1];
        await second.Process.StopAsync(TimeSpan.FromSeconds(30));
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            !(await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(second.SiloEndpoint),
            () => $"{second.SiloEndpoint} is still Active after SIGTERM\n{cluster.Logs()}", ct);
        foreach (var http in gateways.All)
        {
            var blob = RawOci.RandomBytes(64 << 10);
            var watch = Stopwatch.StartNew();
            using var content = new ByteArrayContent(blob);
            using var response = await http.PostAsync($"v2/e2e/two-down/r/blobs/uploads/?digest={OciLayout.Sha256(blob)}", content, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"push with two silos down through {http.BaseAddress}: {(int)response.StatusCode} {text}");
            Assert.Contains("UNAVAILABLE", text);
            Assert.NotNull(response.Headers.RetryAfter);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"the 503 took {watch.Elapsed.TotalSeconds:0.0} s");
            using var tag = new ByteArrayContent(pushed[0].Manifest);
            tag.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(OciLayout.ManifestType);
            using var put = await http.PutAsync($"v2/{pushed[0].Repository}/manifests/moved", tag, ct);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, put.StatusCode);
        }

        // One back: W = 2 again, and nothing acknowledged before was lost (the manifest may come from a gateway's
        // cache sooner than the repository's grain can recover with the returning silo: blobs are asked too).
        await second.Process.StartAgainAsync(ct);
        foreach (var http in gateways.All)
        {
            foreach (var image in pushed)
            {
                await AssertServedSoonAsync(http, image, "after a second silo came back");
            }
        }
        Output?.WriteLine($"{unavailable} pull answer(s) other than 200 in all, before each image was served through both gateways");
    }

    [Fact(Timeout = 300_000)]
    public async Task A_silo_killed_in_the_middle_of_pushes_and_pulls_loses_no_acknowledged_push()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct, replicas: 3);
        using var gateways = new GatewayClients(cluster);
        var acknowledged = new System.Collections.Concurrent.ConcurrentQueue<RawImage>();
        var (pushErrors, pullErrors, pulls) = (0, 0, 0);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var image = RandomImage($"e2e/chaos/r{i % 6}", $"t{i}");
                try
                {
                    await PushAsync(gateways.All, image, chunked: i % 3 == 0, i);
                    acknowledged.Enqueue(image);
                }
                catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref pushErrors);
                }
            }
        }, CancellationToken.None);
        var reader = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var images = acknowledged.ToArray();
                if (images.Length == 0)
                {
                    await Task.Delay(50, CancellationToken.None);
                    continue;
                }
                var image = images[Random.Shared.Next(images.Length)];
                var http = gateways.All[i % gateways.All.Count];
                try
                {
                    var (status, body, response) = await RawOci.GetAsync(http, $"v2/{image.Repository}/blobs/{image.Blobs[1].Digest}", stop.Token);
                    response.Dispose();
                    if (status == HttpStatusCode.OK)
                    {
                        // Never a corrupt read: an answer is the pushed bytes or an error.
                        Assert.True(image.Blobs[1].Bytes.AsSpan().SequenceEqual(body), $"{image.Blobs[1].Digest} through {http.BaseAddress}: the bytes differ");
                        Interlocked.Increment(ref pulls);
                    }
                    else
                    {
                        Interlocked.Increment(ref pullErrors);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    Interlocked.Increment(ref pullErrors);
                }
            }
        }, CancellationToken.None);

        await Task.Delay(TimeSpan.FromSeconds(4), ct);
        var victim = cluster.Silos[1];
        var before = acknowledged.Count;
        victim.Process.Kill();
        var clock = Stopwatch.StartNew();
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            (await cluster.StateAsync(cluster.Silos[0], ct)).StatusesOf(victim.SiloEndpoint) == "Dead",
            () => $"{victim.SiloEndpoint} is not declared Dead\n{cluster.Logs()}", ct);
        var dead = clock.Elapsed;
        // A repository whose leader died is led again after recovery, and its first change waits out the old
        // leader's read lease and the tag leases it may have granted (3 s + 5 s): give pushes time beyond that.
        await Task.Delay(TimeSpan.FromSeconds(15), ct);
        await stop.CancelAsync();
        await Task.WhenAll(writer, reader);
        Output?.WriteLine($"kill -9 after {before} acknowledged pushes; declared Dead after {dead.TotalSeconds:0.0} s; in all {acknowledged.Count} pushes acknowledged, "
            + $"{pushErrors} push(es) failed (client-visible), {pulls} pulls verified, {pullErrors} pull(s) failed (client-visible)");
        Assert.True(acknowledged.Count > before, "no push was acknowledged after the kill");

        foreach (var http in gateways.All)
        {
            foreach (var image in acknowledged)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }
    }

    internal static RawImage RandomImage(string repository, string tag)
    {
        var config = RawOci.Config($"{repository}-{tag}-{Guid.NewGuid():N}");
        var layer = RawOci.RandomBytes(Random.Shared.Next(40 << 10, 400 << 10));
        (string, byte[]) configBlob = (OciLayout.Sha256(config), config), layerBlob = (OciLayout.Sha256(layer), layer);
        var manifest = RawOci.Manifest(configBlob, [layerBlob], $"{repository}-{tag}");
        return new RawImage(repository, tag, manifest, OciLayout.Sha256(manifest), [configBlob, layerBlob]);
    }

    /// <summary>Pushes an image's blobs and manifest, each request through the next gateway in turn.</summary>
    internal static async Task PushAsync(IReadOnlyList<HttpClient> gateways, RawImage image, bool chunked, int turn)
    {
        var http = gateways[turn % gateways.Count];
        await RawOci.PushMonolithicAsync(http, image.Repository, image.Blobs[0].Bytes);
        if (chunked)
        {
            await RawOci.PushChunkedAsync([.. gateways.Skip(1), gateways[0]], image.Repository, image.Blobs[1].Bytes, 64 << 10);
        }
        else
        {
            await RawOci.PushMonolithicAsync(gateways[(turn + 1) % gateways.Count], image.Repository, image.Blobs[1].Bytes);
        }
        await RawOci.PutManifestAsync(gateways[(turn + 2) % gateways.Count], image.Repository, image.Tag, image.Manifest);
    }

    /// <summary>Runs a push, again after a pause when it failed (at most 3 tries); returns the retries it took.</summary>
    internal static async Task<int> WithRetriesAsync(Func<Task> push, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await push();
                return attempt;
            }
            catch (Xunit.Sdk.XunitException) when (attempt < 2)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), ct);
            }
        }
    }
}
