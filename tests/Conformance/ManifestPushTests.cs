using System.Net;
using System.Net.Http.Headers;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Pushing Manifests": references, subjects, digests, size limits and tags.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ManifestPushTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    [Fact(Timeout = 30000)]
    public async Task Manifest_put_returns_201_with_location_and_digest()
    {
        var name = UniqueName("manifest");
        var config = RandomBytes(50);
        var layer = RandomBytes(500);
        await Client.PushBlobAsync(name, config);
        await Client.PushBlobAsync(name, layer);
        var manifest = ImageManifest(config, [layer]);
        using var put = await Client.PutManifestAsync(name, "v1", manifest, OciManifest);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(Sha256(manifest), Header(put, "Docker-Content-Digest"));
        Assert.Equal($"/v2/{name}/manifests/{Sha256(manifest)}", put.Headers.Location?.OriginalString);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_referencing_a_missing_blob_returns_MANIFEST_BLOB_UNKNOWN()
    {
        var name = UniqueName("missing");
        var config = RandomBytes(50);
        await Client.PushBlobAsync(name, config);
        var manifest = ImageManifest(config, [RandomBytes(500)]);
        using var put = await Client.PutManifestAsync(name, "v1", manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
        using var get = await Client.GetAsync($"/v2/{name}/manifests/v1");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_referencing_a_blob_of_another_repository_returns_MANIFEST_BLOB_UNKNOWN()
    {
        var owner = await Client.PushImageAsync(UniqueName("owner"), "v1");
        var name = UniqueName("borrower");
        await Client.PushBlobAsync(name, owner.Config);
        // The layer is in the registry, but this repository never linked it (no upload, no mount).
        using var put = await Client.PutManifestAsync(name, "v1", owner.Manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Index_with_a_missing_child_manifest_returns_MANIFEST_BLOB_UNKNOWN()
    {
        var name = UniqueName("missing");
        var present = await Client.PushImageAsync(name, null);
        var index = Index([(present.Digest, present.Manifest.Length, OciManifest, "linux", "amd64"), (Sha256(RandomBytes(8)), 400, OciManifest, "linux", "arm64")]);
        using var put = await Client.PutManifestAsync(name, "multi", index, OciIndex);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_with_a_subject_that_does_not_exist_is_accepted()
    {
        var name = UniqueName("subject");
        var absent = Sha256(RandomBytes(16));
        var image = await Client.PushImageAsync(name, null, subject: absent, artifactType: "application/vnd.example.sbom");
        using var get = await Client.GetAsync($"/v2/{name}/manifests/{image.Digest}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_whose_digest_does_not_match_the_reference_returns_DIGEST_INVALID()
    {
        var name = UniqueName("mismatch");
        var image = await Client.PushImageAsync(name, "v1");
        var other = ImageManifest(image.Config, [image.Layer], annotations: new() { ["x"] = "y" });
        using var put = await Client.PutManifestAsync(name, image.Digest, other, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_over_4_MiB_returns_413()
    {
        var name = UniqueName("large");
        var config = RandomBytes(50);
        await Client.PushBlobAsync(name, config);
        var manifest = ImageManifest(config, [], annotations: new() { ["padding"] = new string('x', 4 * 1024 * 1024 + 1) });
        using var put = await Client.PutManifestAsync(name, "big", manifest, OciManifest);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, put.StatusCode);
        using var get = await Client.HeadAsync($"/v2/{name}/manifests/big");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_of_almost_4_MiB_is_accepted()
    {
        var name = UniqueName("large");
        var config = RandomBytes(50);
        await Client.PushBlobAsync(name, config);
        var manifest = ImageManifest(config, [], annotations: new() { ["padding"] = new string('x', 4 * 1024 * 1024 - 1024) });
        await Client.PushManifestAsync(name, "big", manifest);
        using var get = await Client.GetAsync($"/v2/{name}/manifests/big");
        Assert.Equal(manifest, await BodyAsync(get));
    }

    [Fact(Timeout = 30000)]
    public async Task Push_by_digest_with_tag_parameters_returns_one_OCI_Tag_header_per_tag()
    {
        var name = UniqueName("tags");
        var image = await Client.PushImageAsync(name, null);
        using var put = await Client.PutManifestAsync(name, $"{image.Digest}?tag=1.2.3&tag=1.2&tag=latest", image.Manifest, OciManifest);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        // One header line per tag: HttpClient keeps each line as one value.
        var tags = put.Headers.GetValues("OCI-Tag").ToArray();
        Assert.Equal(["1.2.3", "1.2", "latest"], tags);
        foreach (var tag in tags)
        {
            using var get = await Client.HeadAsync($"/v2/{name}/manifests/{tag}");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(image.Digest, Header(get, "Docker-Content-Digest"));
        }
    }

    [Fact(Timeout = 30000)]
    public async Task Pushing_a_tag_again_moves_it_to_the_new_manifest()
    {
        var name = UniqueName("retag");
        await Client.PushImageAsync(name, "latest");
        var second = await Client.PushImageAsync(name, "latest");
        using var get = await Client.HeadAsync($"/v2/{name}/manifests/latest");
        Assert.Equal(second.Digest, Header(get, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_over_4_MiB_without_content_length_returns_413()
    {
        var content = new StreamContent(new NonSeekableStream(new byte[5 * 1024 * 1024]));
        content.Headers.ContentType = new MediaTypeHeaderValue(OciManifest);
        using var put = await Client.SendAsync(HttpMethod.Put, $"/v2/{UniqueName("large")}/manifests/big", content);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, put.StatusCode);
    }
}
