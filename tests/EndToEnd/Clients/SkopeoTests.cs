using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>skopeo 1.9 against the all-in-one over plain HTTP (it tries TLS first and falls back).</summary>
[Collection(SharedRegistry.Name)]
public sealed class SkopeoTests(RegistryFixture fixture)
{
    private RegistryProcess Registry => fixture.Registry;
    private ContainerTools Tools => fixture.Tools;

    [Fact(Timeout = 120_000)]
    public async Task Multi_layer_image_copied_in_and_out_keeps_its_manifest_and_layer_digests()
    {
        var source = new OciLayout(fixture.NewFolder("skopeo-src"));
        var image = source.AddImage("v1", [3 << 20, 200 << 10, 5 << 10]);
        var target = $"docker://{Registry.Host}/e2e/skopeo/multi:v1";

        await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", Tools.AuthFile, source.Reference("v1"), target).EnsureSuccessAsync();

        Assert.Equal(image.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/skopeo/multi", "v1"));
        foreach (var layer in image.Layers)
        {
            Assert.Equal(layer.Digest, await fixture.Http.BlobSha256Async("e2e/skopeo/multi", layer.Digest));
        }

        var back = fixture.NewFolder("skopeo-back");
        await Tools.SkopeoAsync("copy", "--src-tls-verify=false", "--src-authfile", Tools.AuthFile, target, $"oci:{back}:v1").EnsureSuccessAsync();

        var pulled = OciLayout.ReadTag(back, "v1");
        Assert.Equal(image.Manifest.Digest, pulled.Digest);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(back, "blobs", "sha256", pulled.Digest[7..])));
        var layerDigests = manifest.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("digest").GetString()).ToList();
        Assert.Equal(image.Layers.Select(l => l.Digest), layerDigests);
        foreach (var layer in image.Layers)
        {
            Assert.Equal(layer.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", layer.Digest[7..])));
        }
        Assert.Equal(image.Config.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", image.Config.Digest[7..])));
    }

    [Fact(Timeout = 120_000)]
    public async Task Copy_all_of_a_multi_arch_index_keeps_the_index_digest()
    {
        var source = new OciLayout(fixture.NewFolder("skopeo-multiarch"));
        var amd64 = source.AddImage(null, [1 << 20, 10 << 10], "amd64");
        var arm64 = source.AddImage(null, [1 << 20, 10 << 10], "arm64");
        var index = source.AddIndex("multi", [amd64, arm64]);
        var target = $"docker://{Registry.Host}/e2e/skopeo/multiarch:multi";

        await Tools.SkopeoAsync("copy", "--all", "--dest-tls-verify=false", source.Reference("multi"), target).EnsureSuccessAsync();

        Assert.Equal(index.Digest, await fixture.Http.ManifestDigestAsync("e2e/skopeo/multiarch", "multi"));
        Assert.Equal(amd64.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/skopeo/multiarch", amd64.Manifest.Digest));
        Assert.Equal(arm64.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/skopeo/multiarch", arm64.Manifest.Digest));

        var raw = await Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", target).EnsureSuccessAsync();
        Assert.Equal(index.Digest, OciLayout.Sha256(File.ReadAllBytes(source.BlobPath(index.Digest))));
        Assert.Equal(File.ReadAllText(source.BlobPath(index.Digest)), raw.StdOut.TrimEnd('\n'));

        var back = fixture.NewFolder("skopeo-multiarch-back");
        await Tools.SkopeoAsync("copy", "--all", "--src-tls-verify=false", target, $"oci:{back}:multi").EnsureSuccessAsync();
        Assert.Equal(index.Digest, OciLayout.ReadTag(back, "multi").Digest);
        foreach (var layer in amd64.Layers.Concat(arm64.Layers))
        {
            Assert.Equal(layer.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", layer.Digest[7..])));
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task List_tags_shows_every_pushed_tag()
    {
        var source = new OciLayout(fixture.NewFolder("skopeo-tags"));
        source.AddImage("v1", [20 << 10]);
        foreach (var tag in new[] { "1.0", "latest", "v2-rc" })
        {
            await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{Registry.Host}/e2e/skopeo/tags:{tag}").EnsureSuccessAsync();
        }

        var result = await Tools.SkopeoAsync("list-tags", "--tls-verify=false", $"docker://{Registry.Host}/e2e/skopeo/tags").EnsureSuccessAsync();

        using var doc = JsonDocument.Parse(result.StdOut);
        var tags = doc.RootElement.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["1.0", "latest", "v2-rc"], tags);
    }

    [Fact(Timeout = 120_000)]
    public async Task List_tags_follows_the_next_link_past_the_first_page()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = new OciLayout(fixture.NewFolder("skopeo-many-tags"));
        var image = source.AddImage("v1", [4 << 10]);
        await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{Registry.Host}/e2e/skopeo/many-tags:v1").EnsureSuccessAsync();
        // More tags than one default page (1,000), tagged over HTTP: a tag is one small PUT of the same manifest.
        var body = File.ReadAllBytes(source.BlobPath(image.Manifest.Digest));
        var expected = new List<string> { "v1" };
        for (var i = 0; i < 1050; i++)
        {
            var tag = $"t{i:D4}";
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(OciLayout.ManifestType);
            using var put = await fixture.Http.PutAsync($"v2/e2e/skopeo/many-tags/manifests/{tag}", content, ct);
            Assert.Equal(System.Net.HttpStatusCode.Created, put.StatusCode);
            expected.Add(tag);
        }

        var result = await Tools.SkopeoAsync("list-tags", "--tls-verify=false", $"docker://{Registry.Host}/e2e/skopeo/many-tags").EnsureSuccessAsync();

        using var doc = JsonDocument.Parse(result.StdOut);
        var tags = doc.RootElement.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()!).ToList();
        Assert.Equal(expected.Order(StringComparer.Ordinal), tags.Order(StringComparer.Ordinal));
    }

    [Fact(Timeout = 120_000)]
    public async Task Pushing_another_image_to_a_tag_moves_it_and_the_old_image_stays_pullable_by_digest()
    {
        var source = new OciLayout(fixture.NewFolder("skopeo-retag"));
        var first = source.AddImage("first", [32 << 10]);
        var second = source.AddImage("second", [32 << 10]);
        var target = $"docker://{Registry.Host}/e2e/skopeo/retag:latest";

        await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("first"), target).EnsureSuccessAsync();
        Assert.Equal(first.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/skopeo/retag", "latest"));
        await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("second"), target).EnsureSuccessAsync();

        var raw = await Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", target).EnsureSuccessAsync();
        Assert.Equal(second.Manifest.Digest, OciLayout.Sha256(System.Text.Encoding.UTF8.GetBytes(raw.StdOut.TrimEnd('\n'))));
        var back = fixture.NewFolder("skopeo-retag-back");
        await Tools.SkopeoAsync("copy", "--src-tls-verify=false", $"docker://{Registry.Host}/e2e/skopeo/retag@{first.Manifest.Digest}", $"oci:{back}:old").EnsureSuccessAsync();
        Assert.Equal(first.Manifest.Digest, OciLayout.ReadTag(back, "old").Digest);
        Assert.Equal(first.Layers[0].Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", first.Layers[0].Digest[7..])));
    }

    [Fact(Timeout = 120_000)]
    public async Task Delete_makes_the_manifest_unknown()
    {
        var source = new OciLayout(fixture.NewFolder("skopeo-delete"));
        var image = source.AddImage("v1", [20 << 10]);
        var target = $"docker://{Registry.Host}/e2e/skopeo/delete:v1";
        await Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), target).EnsureSuccessAsync();
        await Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", target).EnsureSuccessAsync();

        await Tools.SkopeoAsync("delete", "--tls-verify=false", target).EnsureSuccessAsync();

        var byTag = await Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", target);
        Assert.False(byTag.Succeeded, byTag.StdOut);
        Assert.Contains("manifest unknown", byTag.StdErr, StringComparison.OrdinalIgnoreCase);
        var byDigest = await Tools.SkopeoAsync("inspect", "--raw", "--tls-verify=false", $"docker://{Registry.Host}/e2e/skopeo/delete@{image.Manifest.Digest}");
        Assert.False(byDigest.Succeeded, byDigest.StdOut);
        Assert.Contains("manifest unknown", byDigest.StdErr, StringComparison.OrdinalIgnoreCase);
        Assert.Null(await fixture.Http.ManifestDigestAsync("e2e/skopeo/delete", image.Manifest.Digest));
    }
}
