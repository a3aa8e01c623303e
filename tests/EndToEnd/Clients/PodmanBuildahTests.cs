using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>
/// podman 4.3 and buildah 1.28 as root on private vfs storage, pushing to and pulling from the all-in-one over plain
/// HTTP. Nothing here runs a container: push and pull need no namespaces or cgroups.
/// </summary>
[Collection(SharedRegistry.Name)]
public sealed class PodmanBuildahTests(RegistryFixture fixture) : IDisposable
{
    private readonly ContainerTools tools = new();
    private RegistryProcess Registry => fixture.Registry;

    public void Dispose() => tools.Dispose();

    [Fact(Timeout = 180_000)]
    public async Task Podman_push_then_pull_back_gives_the_same_image_id_and_digest()
    {
        var source = new OciLayout(fixture.NewFolder("podman-src"));
        var image = source.AddImage("v1", [2 << 20, 64 << 10]);
        var imageId = image.Config.Digest[7..];
        var reference = $"{Registry.Host}/e2e/podman/app:v1";

        var pulledFromLayout = await tools.PodmanAsync("pull", "--quiet", source.Reference("v1")).EnsureSuccessAsync();
        Assert.Equal(imageId, LastLine(pulledFromLayout.StdOut));
        await tools.PodmanAsync("tag", imageId, reference).EnsureSuccessAsync();
        var digestFile = Path.Combine(tools.Root, "podman.digest");
        await tools.PodmanAsync("push", "--tls-verify=false", "--digestfile", digestFile, reference).EnsureSuccessAsync();

        var pushed = File.ReadAllText(digestFile).Trim();
        Assert.Equal(pushed, await fixture.Http.ManifestDigestAsync("e2e/podman/app", "v1"));
        await AssertImageInRegistryAsync("e2e/podman/app", "v1", image.Config.Digest, image.DiffIds);

        await tools.PodmanAsync("rmi", "--all", "--force").EnsureSuccessAsync();
        Assert.Equal("", (await tools.PodmanAsync("images", "--quiet").EnsureSuccessAsync()).StdOut.Trim());

        var pulled = await tools.PodmanAsync("pull", "--quiet", "--tls-verify=false", reference).EnsureSuccessAsync();
        Assert.Equal(imageId, LastLine(pulled.StdOut));
        var digest = await tools.PodmanAsync("image", "inspect", "--format", "{{.Digest}}", reference).EnsureSuccessAsync();
        Assert.Equal(pushed, digest.StdOut.Trim());
    }

    [Fact(Timeout = 180_000)]
    public async Task Buildah_builds_on_a_layout_pushes_and_pulls_back_the_same_image()
    {
        var source = new OciLayout(fixture.NewFolder("buildah-src"));
        var baseImage = source.AddImage("base", [1 << 20]);
        var reference = $"{Registry.Host}/e2e/buildah/built:v1";

        var container = LastLine((await tools.BuildahAsync("from", "--quiet", "--pull-always", source.Reference("base")).EnsureSuccessAsync()).StdOut);
        var added = Path.Combine(fixture.NewFolder("buildah-file"), "hello.txt");
        File.WriteAllText(added, $"built by buildah for Wharf {Guid.NewGuid()}\n");
        await tools.BuildahAsync("copy", container, added, "/hello.txt").EnsureSuccessAsync();
        var imageId = LastLine((await tools.BuildahAsync("commit", "--quiet", container, "e2e-built").EnsureSuccessAsync()).StdOut);
        var digestFile = Path.Combine(tools.Root, "buildah.digest");
        await tools.BuildahAsync("push", "--quiet", "--tls-verify=false", "--digestfile", digestFile, "e2e-built", $"docker://{reference}").EnsureSuccessAsync();

        var pushed = File.ReadAllText(digestFile).Trim();
        Assert.Equal(pushed, await fixture.Http.ManifestDigestAsync("e2e/buildah/built", "v1"));
        var diffIds = await AssertImageInRegistryAsync("e2e/buildah/built", "v1", "sha256:" + imageId, null);
        Assert.Equal(2, diffIds.Count);
        Assert.Equal(baseImage.DiffIds[0], diffIds[0]);

        await tools.BuildahAsync("rm", "--all").EnsureSuccessAsync();
        await tools.BuildahAsync("rmi", "--all", "--force").EnsureSuccessAsync();
        var pulled = await tools.BuildahAsync("pull", "--quiet", "--tls-verify=false", $"docker://{reference}").EnsureSuccessAsync();
        Assert.Equal(imageId, LastLine(pulled.StdOut));
    }

    [Fact(Timeout = 180_000)]
    public async Task Podman_manifest_push_all_publishes_an_index_and_pull_by_arch_picks_the_platform()
    {
        var source = new OciLayout(fixture.NewFolder("podman-manifest"));
        var amd64 = source.AddImage("amd64", [256 << 10], "amd64");
        var arm64 = source.AddImage("arm64", [256 << 10], "arm64");
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference(arch), $"docker://{Registry.Host}/e2e/podman/parts:{arch}").EnsureSuccessAsync();
        }
        var reference = $"{Registry.Host}/e2e/podman/multi:v1";

        await tools.PodmanAsync("manifest", "create", "e2e-list").EnsureSuccessAsync();
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            await tools.PodmanAsync("manifest", "add", "--tls-verify=false", "e2e-list", $"docker://{Registry.Host}/e2e/podman/parts:{arch}").EnsureSuccessAsync();
        }
        var digestFile = Path.Combine(tools.Root, "list.digest");
        await tools.PodmanAsync("manifest", "push", "--all", "--tls-verify=false", "--digestfile", digestFile, "e2e-list", $"docker://{reference}").EnsureSuccessAsync();

        var pushed = File.ReadAllText(digestFile).Trim();
        Assert.Equal(pushed, await fixture.Http.ManifestDigestAsync("e2e/podman/multi", "v1"));
        Assert.Equal(amd64.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/podman/multi", amd64.Manifest.Digest));
        Assert.Equal(arm64.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/podman/multi", arm64.Manifest.Digest));

        var pulledArm = await tools.PodmanAsync("pull", "--quiet", "--arch", "arm64", "--tls-verify=false", reference).EnsureSuccessAsync();
        Assert.Equal(arm64.Config.Digest[7..], LastLine(pulledArm.StdOut));
        var pulledAmd = await tools.PodmanAsync("pull", "--quiet", "--arch", "amd64", "--tls-verify=false", reference).EnsureSuccessAsync();
        Assert.Equal(amd64.Config.Digest[7..], LastLine(pulledAmd.StdOut));
    }

    /// <summary>
    /// Checks over HTTP that the tag's manifest names the expected config, that every layer's bytes match their
    /// digest, and (when given) the config's diff ids. Returns the config's diff ids.
    /// </summary>
    private async Task<List<string>> AssertImageInRegistryAsync(string repository, string tag, string configDigest, IReadOnlyList<string>? diffIds)
    {
        var ct = TestContext.Current.CancellationToken;
        var manifestDigest = await fixture.Http.ManifestDigestAsync(repository, tag);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repository}/manifests/{manifestDigest}");
        request.Headers.Accept.ParseAdd(OciLayout.ManifestType);
        request.Headers.Accept.ParseAdd("application/vnd.docker.distribution.manifest.v2+json");
        using var response = await fixture.Http.SendAsync(request, ct);
        response.EnsureSuccessStatusCode();
        using var manifest = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(ct));
        Assert.Equal(configDigest, manifest.RootElement.GetProperty("config").GetProperty("digest").GetString());
        foreach (var layer in manifest.RootElement.GetProperty("layers").EnumerateArray())
        {
            var digest = layer.GetProperty("digest").GetString()!;
            Assert.Equal(digest, await fixture.Http.BlobSha256Async(repository, digest));
        }
        using var config = JsonDocument.Parse(await fixture.Http.GetByteArrayAsync($"v2/{repository}/blobs/{configDigest}", ct));
        var actual = config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()!).ToList();
        if (diffIds is not null)
        {
            Assert.Equal(diffIds, actual);
        }
        return actual;
    }

    private static string LastLine(string text) => text.Trim().Split('\n')[^1].Trim();
}
