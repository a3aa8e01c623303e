using System.Net;
using System.Net.Http.Headers;
using Wharf.Contracts.Placement;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Blob bytes replicated R = 3, W = 2 over real silo processes (a cluster of its own: 3 silos, 2 gateways, Redis):
/// every silo holds a pushed layer, and an upload in progress and pulls survive a silo killed with SIGKILL, through
/// either gateway. Repository records are not replicated yet (docs/architecture.md, "Replication"), so the
/// repository and the upload session are chosen to live on silos that stay up.
/// </summary>
public sealed class ReplicatedBytesTests
{
    private const int Mib = 1 << 20;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 240_000)]
    public async Task With_R3_W2_a_layer_is_on_every_silo_and_an_upload_and_pulls_survive_a_killed_silo_through_either_gateway()
    {
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, Ct, replicas: 3);
        using var a = new HttpClient { BaseAddress = cluster.Gateways[0].BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var b = new HttpClient { BaseAddress = cluster.Gateways[1].BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var view = (await cluster.StateAsync(cluster.Silos[0], Ct)).View;
        Assert.Equal((3, 2), (view.Replicas, view.WriteQuorum));
        var victim = cluster.Silos[2];
        var victimId = victim.NodeId;
        string FirstOwner(int shard) => RendezvousPlacement.Owners(view, shard, 3)[0].NodeId;
        var repository = Enumerable.Range(0, 1000).Select(i => $"e2e/replicated/r{i}")
            .First(r => FirstOwner(Shards.OfRepository(r)) != victimId);

        // A monolithic push lands on all three silos.
        var layer = RawOci.RandomBytes(Mib);
        await RawOci.PushMonolithicAsync(a, repository, layer);
        var hex = OciLayout.Sha256(layer)["sha256:".Length..];
        foreach (var silo in cluster.Silos)
        {
            Assert.True(File.Exists(Path.Combine(silo.Process.DataPath, "blobs", "sha256", hex[..2], hex)), $"the layer is not on {silo.NodeId}");
        }

        // An upload whose session lives on a silo that stays up; its bytes go to all three.
        var upload = RawOci.RandomBytes(2 * Mib);
        string location;
        while (true)
        {
            using var post = await a.PostAsync($"v2/{repository}/blobs/uploads/", null, Ct);
            Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
            location = post.Headers.Location!.ToString();
            if (FirstOwner(Shards.OfUpload(location.TrimEnd('/').Split('/')[^1])) != victimId)
            {
                break;
            }
        }
        location = await PatchAsync(a, location, upload, 0, Mib);

        victim.Process.Kill();
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            (await cluster.StateAsync(cluster.Silos[0], Ct)).StatusesOf(victim.SiloEndpoint) == "Dead",
            () => $"{victim.SiloEndpoint} is not declared Dead\n{cluster.Logs()}", Ct);

        // The upload goes on through the other gateway on the two live owners, and completes.
        location = await PatchAsync(b, location, upload, Mib, Mib);
        var separator = location.Contains('?') ? '&' : '?';
        using (var put = await a.PutAsync($"{location}{separator}digest={OciLayout.Sha256(upload)}", null, Ct))
        {
            Assert.True(put.StatusCode == HttpStatusCode.Created, $"PUT: {(int)put.StatusCode} {await put.Content.ReadAsStringAsync(Ct)}");
        }

        // A new push still succeeds (W = 2 of the live two); every blob pulls byte for byte through both gateways.
        var after = RawOci.RandomBytes(Mib);
        await RawOci.PushMonolithicAsync(b, repository, after);
        foreach (var blob in new[] { upload, after })
        {
            var h = OciLayout.Sha256(blob)["sha256:".Length..];
            foreach (var silo in cluster.Silos.Where(x => x != victim))
            {
                Assert.True(File.Exists(Path.Combine(silo.Process.DataPath, "blobs", "sha256", h[..2], h)), $"{OciLayout.Sha256(blob)} is not on {silo.NodeId}");
            }
        }
        foreach (var http in new[] { a, b })
        {
            foreach (var blob in new[] { layer, upload, after })
            {
                var (status, body, response) = await RawOci.GetAsync(http, $"v2/{repository}/blobs/{OciLayout.Sha256(blob)}", Ct);
                response.Dispose();
                Assert.True(status == HttpStatusCode.OK, $"GET through {http.BaseAddress}: {(int)status}");
                Assert.True(blob.AsSpan().SequenceEqual(body), $"blob {OciLayout.Sha256(blob)} through {http.BaseAddress}: the bytes differ");
            }
        }
    }

    private static async Task<string> PatchAsync(HttpClient http, string location, byte[] bytes, int offset, int count)
    {
        using var chunk = new ByteArrayContent(bytes, offset, count);
        chunk.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        chunk.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + count - 1}");
        using var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = chunk };
        using var patch = await http.SendAsync(request, Ct);
        Assert.True(patch.StatusCode == HttpStatusCode.Accepted, $"PATCH {offset}: {(int)patch.StatusCode} {await patch.Content.ReadAsStringAsync(Ct)}");
        return patch.Headers.Location!.ToString();
    }
}
