using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>containerd 1.6's ctr pulling from and pushing to the all-in-one with --plain-http.</summary>
[Collection(SharedRegistry.Name)]
public sealed class ContainerdTests(RegistryFixture fixture)
{
    private RegistryProcess Registry => fixture.Registry;

    [Fact(Timeout = 180_000)]
    public async Task Ctr_pulls_an_image_and_pushes_it_to_another_repository_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = new OciLayout(fixture.NewFolder("ctr-src"));
        var image = source.AddImage("v1", [2 << 20, 32 << 10]);
        await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{Registry.Host}/e2e/ctr/source:v1").EnsureSuccessAsync();
        await using var containerd = await ContainerdProcess.StartAsync(ct);

        await containerd.CtrAsync("images", "pull", "--plain-http", "--snapshotter", "native", $"{Registry.Host}/e2e/ctr/source:v1").EnsureSuccessAsync();
        var listed = await containerd.CtrAsync("images", "ls").EnsureSuccessAsync();
        Assert.Contains($"{Registry.Host}/e2e/ctr/source:v1", listed.StdOut);
        Assert.Contains(image.Manifest.Digest, listed.StdOut);

        var target = $"{Registry.Host}/e2e/ctr/pushed:v2";
        await containerd.CtrAsync("images", "tag", $"{Registry.Host}/e2e/ctr/source:v1", target).EnsureSuccessAsync();
        await containerd.CtrAsync("images", "push", "--plain-http", target).EnsureSuccessAsync();

        Assert.Equal(image.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/ctr/pushed", "v2"));
        foreach (var layer in image.Layers)
        {
            Assert.Equal(layer.Digest, await fixture.Http.BlobSha256Async("e2e/ctr/pushed", layer.Digest));
        }
        Assert.Equal(image.Config.Digest, await fixture.Http.BlobSha256Async("e2e/ctr/pushed", image.Config.Digest));
    }

    [Fact(Timeout = 180_000)]
    public async Task Ctr_pulls_and_pushes_a_docker_schema2_image_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = new OciLayout(fixture.NewFolder("ctr-docker"));
        source.AddImage("v1", [300 << 10]);
        // skopeo converts the OCI manifest to Docker's schema 2 on the way in, as pushed by docker itself.
        await fixture.Tools.SkopeoAsync("copy", "--format", "v2s2", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{Registry.Host}/e2e/ctr/docker-source:v1").EnsureSuccessAsync();
        var digest = await fixture.Http.ManifestDigestAsync("e2e/ctr/docker-source", "v1");
        var raw = await fixture.Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{Registry.Host}/e2e/ctr/docker-source:v1").EnsureSuccessAsync();
        Assert.Contains("application/vnd.docker.distribution.manifest.v2+json", raw.StdOut);
        await using var containerd = await ContainerdProcess.StartAsync(ct);

        await containerd.CtrAsync("images", "pull", "--plain-http", "--snapshotter", "native", $"{Registry.Host}/e2e/ctr/docker-source:v1").EnsureSuccessAsync();
        var target = $"{Registry.Host}/e2e/ctr/docker-pushed:v1";
        await containerd.CtrAsync("images", "tag", $"{Registry.Host}/e2e/ctr/docker-source:v1", target).EnsureSuccessAsync();
        await containerd.CtrAsync("images", "push", "--plain-http", target).EnsureSuccessAsync();

        Assert.Equal(digest, await fixture.Http.ManifestDigestAsync("e2e/ctr/docker-pushed", "v1"));
    }

    [Fact(Timeout = 180_000)]
    public async Task Ctr_round_trips_a_multi_arch_index_with_all_platforms()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = new OciLayout(fixture.NewFolder("ctr-multiarch"));
        var amd64 = source.AddImage(null, [512 << 10], "amd64");
        var arm64 = source.AddImage(null, [512 << 10], "arm64");
        var index = source.AddIndex("multi", [amd64, arm64]);
        await fixture.Tools.SkopeoAsync("copy", "--all", "--dest-tls-verify=false", source.Reference("multi"), $"docker://{Registry.Host}/e2e/ctr/multi-source:v1").EnsureSuccessAsync();
        await using var containerd = await ContainerdProcess.StartAsync(ct);

        await containerd.CtrAsync("images", "pull", "--plain-http", "--all-platforms", "--snapshotter", "native", $"{Registry.Host}/e2e/ctr/multi-source:v1").EnsureSuccessAsync();
        var target = $"{Registry.Host}/e2e/ctr/multi-pushed:v1";
        await containerd.CtrAsync("images", "tag", $"{Registry.Host}/e2e/ctr/multi-source:v1", target).EnsureSuccessAsync();
        await containerd.CtrAsync("images", "push", "--plain-http", target).EnsureSuccessAsync();

        Assert.Equal(index.Digest, await fixture.Http.ManifestDigestAsync("e2e/ctr/multi-pushed", "v1"));
        foreach (var child in new[] { amd64, arm64 })
        {
            Assert.Equal(child.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/ctr/multi-pushed", child.Manifest.Digest));
            Assert.Equal(child.Layers[0].Digest, await fixture.Http.BlobSha256Async("e2e/ctr/multi-pushed", child.Layers[0].Digest));
        }
    }
}
