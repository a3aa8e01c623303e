using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Three silos and two gateways as separate processes over a real redis-server: any gateway serves any request.
/// </summary>
[Collection(SharedCluster.Name)]
public sealed class ClusterServingTests(ClusterFixture fixture)
{
    private ClusterProcesses Cluster => fixture.Cluster;

    [Fact(Timeout = 120_000)]
    public async Task Images_pushed_through_one_gateway_pull_byte_for_byte_through_the_other()
    {
        var ct = TestContext.Current.CancellationToken;
        var view = (await Cluster.StateAsync(Cluster.Silos[0], ct)).View;
        // Two repositories owned by each silo, so the records (and, by their random digests, the bytes) of these
        // images live on every silo.
        var repositories = new List<string>();
        foreach (var node in view.Nodes.Select(n => n.NodeId))
        {
            repositories.AddRange(Enumerable.Range(0, 1000).Select(i => $"e2e/cluster/spread{i}")
                .Where(r => ClusterProcesses.OwnerOfRepository(view, r) == node).Take(2));
        }
        Assert.Equal(6, repositories.Count);

        var images = new List<RawImage>();
        foreach (var repository in repositories)
        {
            var config = RawOci.Config(repository);
            var big = RawOci.RandomBytes((1 << 20) + 12345);
            var small = RawOci.RandomBytes(40 << 10);
            await RawOci.PushMonolithicAsync(fixture.A, repository, config);
            await RawOci.PushChunkedAsync([fixture.A], repository, big, 256 << 10);
            await RawOci.PushMonolithicAsync(fixture.A, repository, small);
            (string, byte[])[] layers = [(OciLayout.Sha256(big), big), (OciLayout.Sha256(small), small)];
            var manifest = RawOci.Manifest((OciLayout.Sha256(config), config), layers, repository);
            await RawOci.PutManifestAsync(fixture.A, repository, "v1", manifest);
            images.Add(new RawImage(repository, "v1", manifest, OciLayout.Sha256(manifest), [(OciLayout.Sha256(config), config), .. layers]));
        }

        foreach (var image in images)
        {
            await RawOci.AssertServedAsync(fixture.B, image);
        }
        var digestOwners = images.SelectMany(i => i.Blobs.Select(b => ClusterProcesses.OwnerOfDigest(view, b.Digest))).ToHashSet();
        Assert.True(digestOwners.Count >= 2, "the blobs' digests all hash to one silo; the test would not spread bytes");
    }

    [Fact(Timeout = 120_000)]
    public async Task One_upload_sent_to_alternating_gateways_completes_and_reads_back_through_either()
    {
        var ct = TestContext.Current.CancellationToken;
        // POST on A, PATCH on B, A, B, A, B, PUT on A; then the other way round (POST on B).
        foreach (var (gateways, name) in new (HttpClient[], string)[] { ([fixture.A, fixture.B], "ab"), ([fixture.B, fixture.A], "ba") })
        {
            var repository = $"e2e/cluster/alternate-{name}";
            var bytes = RawOci.RandomBytes((5 << 20) + 777);
            await RawOci.PushChunkedAsync(gateways, repository, bytes, 1 << 20);
            var digest = OciLayout.Sha256(bytes);
            foreach (var http in new[] { fixture.A, fixture.B })
            {
                var (status, body, response) = await RawOci.GetAsync(http, $"v2/{repository}/blobs/{digest}", ct);
                response.Dispose();
                Assert.Equal(System.Net.HttpStatusCode.OK, status);
                Assert.True(bytes.AsSpan().SequenceEqual(body), $"the blob read through {http.BaseAddress} differs");
            }
        }
    }

    [Fact(Timeout = 240_000)]
    public async Task Skopeo_and_ctr_push_and_pull_through_each_gateway_with_the_same_digests()
    {
        var ct = TestContext.Current.CancellationToken;
        var (a, b) = (fixture.GatewayA.Host, fixture.GatewayB.Host);
        var source = new OciLayout(fixture.NewFolder("cluster-skopeo"));
        var image = source.AddImage("v1", [3 << 20, 200 << 10, 5 << 10]);

        await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{a}/e2e/cluster/skopeo:v1").EnsureSuccessAsync();
        var back = fixture.NewFolder("cluster-skopeo-back");
        await fixture.Tools.SkopeoAsync("copy", "--src-tls-verify=false", $"docker://{b}/e2e/cluster/skopeo:v1", $"oci:{back}:v1").EnsureSuccessAsync();

        var pulled = OciLayout.ReadTag(back, "v1");
        Assert.Equal(image.Manifest.Digest, pulled.Digest);
        using (var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(back, "blobs", "sha256", pulled.Digest[7..]))))
        {
            Assert.Equal(image.Layers.Select(l => l.Digest), manifest.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("digest").GetString()));
        }
        foreach (var blob in image.Layers.Append(image.Config))
        {
            Assert.Equal(blob.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", blob.Digest[7..])));
        }

        await using var containerd = await ContainerdProcess.StartAsync(ct);
        // Pull through each gateway; push through each gateway; read each push back through the other.
        foreach (var (from, to, other) in new[] { (a, b, fixture.A), (b, a, fixture.B) })
        {
            await containerd.CtrAsync("images", "pull", "--plain-http", "--snapshotter", "native", $"{from}/e2e/cluster/skopeo:v1").EnsureSuccessAsync();
            var listed = await containerd.CtrAsync("images", "ls").EnsureSuccessAsync();
            Assert.Contains($"{from}/e2e/cluster/skopeo:v1", listed.StdOut);
            var target = $"{to}/e2e/cluster/ctr-via-{to.Split(':')[1]}:v1";
            await containerd.CtrAsync("images", "tag", $"{from}/e2e/cluster/skopeo:v1", target).EnsureSuccessAsync();
            await containerd.CtrAsync("images", "push", "--plain-http", target).EnsureSuccessAsync();

            var repository = $"e2e/cluster/ctr-via-{to.Split(':')[1]}";
            Assert.Equal(image.Manifest.Digest, await other.ManifestDigestAsync(repository, "v1"));
            foreach (var blob in image.Layers.Append(image.Config))
            {
                Assert.Equal(blob.Digest, await other.BlobSha256Async(repository, blob.Digest));
            }
        }
    }
}
