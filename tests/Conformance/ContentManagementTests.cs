using System.Net;
using System.Text.Json.Nodes;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Content Management": deleting tags, manifests and blobs.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ContentManagementTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    private async Task<string[]> TagsAsync(string name)
    {
        using var response = await Client.GetAsync($"/v2/{name}/tags/list");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await JsonAsync(response))["tags"]!.AsArray().Select(n => n!.GetValue<string>())];
    }

    [Fact(Timeout = 30000)]
    public async Task Delete_tag_removes_the_tag_and_keeps_the_manifest()
    {
        var name = UniqueName("delete");
        var image = await Client.PushImageAsync(name, "keep");
        await Client.PushManifestAsync(name, "drop", image.Manifest);
        using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/drop");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);

        using var dropped = await Client.GetAsync($"/v2/{name}/manifests/drop");
        await AssertErrorAsync(dropped, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var kept = await Client.GetAsync($"/v2/{name}/manifests/keep");
        Assert.Equal(HttpStatusCode.OK, kept.StatusCode);
        using var byDigest = await Client.GetAsync($"/v2/{name}/manifests/{image.Digest}");
        Assert.Equal(HttpStatusCode.OK, byDigest.StatusCode);
        Assert.Equal(["keep"], await TagsAsync(name));
    }

    [Fact(Timeout = 30000)]
    public async Task Delete_manifest_by_digest_removes_it_and_its_tags()
    {
        var name = UniqueName("delete");
        var image = await Client.PushImageAsync(name, "a");
        await Client.PushManifestAsync(name, "b", image.Manifest);
        var other = await Client.PushImageAsync(name, "c");
        using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{image.Digest}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);

        foreach (var reference in new[] { image.Digest, "a", "b" })
        {
            using var get = await Client.GetAsync($"/v2/{name}/manifests/{reference}");
            await AssertErrorAsync(get, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
            using var head = await Client.HeadAsync($"/v2/{name}/manifests/{reference}");
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }
        Assert.Equal(["c"], await TagsAsync(name));
        using var survivor = await Client.HeadAsync($"/v2/{name}/manifests/{other.Digest}");
        Assert.Equal(HttpStatusCode.OK, survivor.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Deleting_the_last_tag_leaves_an_empty_tag_list()
    {
        var name = UniqueName("delete");
        await Client.PushImageAsync(name, "only");
        using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/only");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        Assert.Empty(await TagsAsync(name));
    }

    [Fact(Timeout = 30000)]
    public async Task Deleting_tags_then_manifests_then_blobs_leaves_nothing_to_pull()
    {
        // The order the conformance suite cleans up in: tags, manifests (index first), then blobs.
        var name = UniqueName("cleanup");
        var image = await Client.PushImageAsync(name, "image");
        var index = Index([(image.Digest, image.Manifest.Length, OciManifest, "linux", "amd64")]);
        var indexDigest = await Client.PushManifestAsync(name, "index", index, OciIndex);
        foreach (var tag in new[] { "image", "index" })
        {
            using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{tag}");
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
            using var head = await Client.HeadAsync($"/v2/{name}/manifests/{tag}");
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }
        foreach (var digest in new[] { indexDigest, image.Digest })
        {
            using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{digest}");
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
            using var head = await Client.HeadAsync($"/v2/{name}/manifests/{digest}");
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }
        foreach (var digest in new[] { image.ConfigDigest, image.LayerDigest })
        {
            using var delete = await Client.DeleteAsync($"/v2/{name}/blobs/{digest}");
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
            using var head = await Client.HeadAsync($"/v2/{name}/blobs/{digest}");
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }
        Assert.Empty(await TagsAsync(name));
    }

    [Fact(Timeout = 30000)]
    public async Task Deleted_manifest_can_be_pushed_again()
    {
        var name = UniqueName("repush");
        var image = await Client.PushImageAsync(name, "v1");
        using (var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{image.Digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }
        await Client.PushManifestAsync(name, "v1", image.Manifest);
        using var get = await Client.GetAsync($"/v2/{name}/manifests/v1");
        Assert.Equal(image.Manifest, await BodyAsync(get));
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_deleted_from_the_source_can_no_longer_be_mounted_from_it()
    {
        var source = UniqueName("mount-src");
        var digest = await Client.PushBlobAsync(source, RandomBytes(500));
        using (var delete = await Client.DeleteAsync($"/v2/{source}/blobs/{digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }
        using var mount = await Client.SendAsync(HttpMethod.Post, $"/v2/{UniqueName("mount-dst")}/blobs/uploads/?mount={digest}&from={source}");
        Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Deleting_a_manifest_keeps_the_tags_that_moved_away_from_it()
    {
        var name = UniqueName("moved");
        var old = await Client.PushImageAsync(name, "latest");
        var current = await Client.PushImageAsync(name, "latest");
        using (var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{old.Digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }
        using var head = await Client.HeadAsync($"/v2/{name}/manifests/latest");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(current.Digest, Header(head, "Docker-Content-Digest"));
        Assert.Equal(["latest"], await TagsAsync(name));
    }

    [Fact(Timeout = 30000)]
    public async Task Delete_of_an_unknown_manifest_returns_404_MANIFEST_UNKNOWN()
    {
        var name = UniqueName("delete");
        await Client.PushImageAsync(name, "v1");
        using var byDigest = await Client.DeleteAsync($"/v2/{name}/manifests/{Sha256(RandomBytes(8))}");
        await AssertErrorAsync(byDigest, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var byTag = await Client.DeleteAsync($"/v2/{name}/manifests/nope");
        await AssertErrorAsync(byTag, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Deleted_referrer_leaves_the_referrers_list()
    {
        var name = UniqueName("delete");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var sig = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.sig");
        await Client.PushManifestAsync(name, Sha256(sig), sig);
        using var delete = await Client.DeleteAsync($"/v2/{name}/manifests/{Sha256(sig)}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        using var response = await Client.GetAsync($"/v2/{name}/referrers/{subject.Digest}");
        Assert.Empty((await JsonAsync(response))["manifests"]!.AsArray());
    }

    [Fact(Timeout = 30000)]
    public async Task Delete_blob_makes_it_unknown_in_that_repository_only()
    {
        var first = UniqueName("delete");
        var second = UniqueName("delete");
        var blob = RandomBytes(1000);
        var digest = await Client.PushBlobAsync(first, blob);
        await Client.PushBlobAsync(second, blob);

        using var delete = await Client.DeleteAsync($"/v2/{first}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        using var get = await Client.GetAsync($"/v2/{first}/blobs/{digest}");
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
        using var head = await Client.HeadAsync($"/v2/{first}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        using var again = await Client.DeleteAsync($"/v2/{first}/blobs/{digest}");
        await AssertErrorAsync(again, HttpStatusCode.NotFound, "BLOB_UNKNOWN");

        using var elsewhere = await Client.GetAsync($"/v2/{second}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, elsewhere.StatusCode);
        Assert.Equal(blob, await BodyAsync(elsewhere));
    }

    [Fact(Timeout = 30000)]
    public async Task Deleted_blob_can_be_pushed_again()
    {
        var name = UniqueName("delete");
        var blob = RandomBytes(1000);
        var digest = await Client.PushBlobAsync(name, blob);
        using var delete = await Client.DeleteAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        await Client.PushBlobAsync(name, blob);
        using var get = await Client.GetAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(blob, await BodyAsync(get));
    }
}
