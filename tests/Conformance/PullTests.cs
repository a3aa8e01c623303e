using System.Net;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Pull": manifests by tag and digest, blobs, ranges, and content negotiation.</summary>
[Collection(RegistryCollection.Name)]
public sealed class PullTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    [Fact(Timeout = 30000)]
    public async Task Manifest_by_tag_and_by_digest_return_the_pushed_bytes_with_digest_and_length()
    {
        var image = await Client.PushImageAsync(UniqueName("pull"), "v1");
        foreach (var reference in new[] { "v1", image.Digest })
        {
            using var response = await Client.GetAsync($"/v2/{image.Repository}/manifests/{reference}", OciManifest);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(image.Manifest, await BodyAsync(response));
            Assert.Equal(image.Digest, Header(response, "Docker-Content-Digest"));
            Assert.Equal(image.Manifest.Length, response.Content.Headers.ContentLength);
            Assert.Equal(OciManifest, response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_head_returns_digest_and_length_without_body()
    {
        var image = await Client.PushImageAsync(UniqueName("pull"), "v1");
        foreach (var reference in new[] { "v1", image.Digest })
        {
            using var response = await Client.HeadAsync($"/v2/{image.Repository}/manifests/{reference}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(image.Digest, Header(response, "Docker-Content-Digest"));
            Assert.Equal(image.Manifest.Length, response.Content.Headers.ContentLength);
            Assert.Empty(await BodyAsync(response));
        }
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_get_returns_content_with_digest_and_length()
    {
        var image = await Client.PushImageAsync(UniqueName("pull"), "v1", layerSize: 5000);
        using var response = await Client.GetAsync($"/v2/{image.Repository}/blobs/{image.LayerDigest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(image.Layer, await BodyAsync(response));
        Assert.Equal(image.LayerDigest, Header(response, "Docker-Content-Digest"));
        Assert.Equal(image.Layer.Length, response.Content.Headers.ContentLength);
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_head_returns_digest_and_length_without_body()
    {
        var image = await Client.PushImageAsync(UniqueName("pull"), "v1", layerSize: 5000);
        using var response = await Client.HeadAsync($"/v2/{image.Repository}/blobs/{image.LayerDigest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(image.LayerDigest, Header(response, "Docker-Content-Digest"));
        Assert.Equal(5000, response.Content.Headers.ContentLength);
        Assert.Empty(await BodyAsync(response));
    }

    [Theory(Timeout = 30000)]
    [InlineData(1000)] // held as a RocksDB value
    [InlineData(300 * 1024)] // held as a file beside RocksDB
    public async Task Blob_range_returns_206_with_content_range(int size)
    {
        var name = UniqueName("range");
        var blob = RandomBytes(size);
        var digest = await Client.PushBlobAsync(name, blob);
        using var response = await Client.GetRangeAsync($"/v2/{name}/blobs/{digest}", "bytes=100-199");
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(blob[100..200], await BodyAsync(response));
        Assert.Equal($"bytes 100-199/{size}", Header(response, "Content-Range"));
        Assert.Equal(100, response.Content.Headers.ContentLength);
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_suffix_range_returns_the_last_bytes()
    {
        var name = UniqueName("range");
        var blob = RandomBytes(1000);
        var digest = await Client.PushBlobAsync(name, blob);
        using var response = await Client.GetRangeAsync($"/v2/{name}/blobs/{digest}", "bytes=-10");
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(blob[990..], await BodyAsync(response));
        Assert.Equal("bytes 990-999/1000", Header(response, "Content-Range"));
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_open_ended_range_returns_the_rest()
    {
        var name = UniqueName("range");
        var blob = RandomBytes(1000);
        var digest = await Client.PushBlobAsync(name, blob);
        using var response = await Client.GetRangeAsync($"/v2/{name}/blobs/{digest}", "bytes=900-");
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(blob[900..], await BodyAsync(response));
        Assert.Equal("bytes 900-999/1000", Header(response, "Content-Range"));
    }

    [Theory(Timeout = 30000)]
    [InlineData("bytes=1000-1010")]
    [InlineData("bytes=5000-")]
    [InlineData("bytes=-0")]
    [InlineData("bytes=500-0")] // the spec's conformance suite ("range 500-0") fails a registry that answers 200 here
    public async Task Blob_range_that_cannot_be_satisfied_returns_416_with_the_size(string range)
    {
        var name = UniqueName("range");
        var digest = await Client.PushBlobAsync(name, RandomBytes(1000));
        using var response = await Client.GetRangeAsync($"/v2/{name}/blobs/{digest}", range);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        Assert.Equal("bytes */1000", Header(response, "Content-Range"));
    }

    [Fact(Timeout = 30000)]
    public async Task Docker_schema2_manifest_is_served_with_its_media_type()
    {
        var image = await Client.PushImageAsync(UniqueName("docker"), "v1", mediaType: DockerManifest);
        using var response = await Client.GetAsync($"/v2/{image.Repository}/manifests/v1", DockerManifest, DockerManifestList);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(DockerManifest, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(image.Manifest, await BodyAsync(response));
        Assert.Equal(image.Digest, Header(response, "Docker-Content-Digest"));
    }

    [Theory(Timeout = 30000)]
    [InlineData(OciIndex, OciManifest)]
    [InlineData(DockerManifestList, DockerManifest)]
    public async Task Index_is_served_with_its_media_type_when_accepted(string indexType, string imageType)
    {
        var name = UniqueName("index");
        var amd64 = await Client.PushImageAsync(name, null, mediaType: imageType);
        var arm64 = await Client.PushImageAsync(name, null, mediaType: imageType);
        var index = Index([(amd64.Digest, amd64.Manifest.Length, imageType, "linux", "amd64"), (arm64.Digest, arm64.Manifest.Length, imageType, "linux", "arm64")], indexType);
        var digest = await Client.PushManifestAsync(name, "multi", index, indexType);

        using var response = await Client.GetAsync($"/v2/{name}/manifests/multi", OciManifest, OciIndex, DockerManifest, DockerManifestList);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(indexType, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(index, await BodyAsync(response));
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Index_requested_by_a_client_that_accepts_only_images_returns_the_linux_amd64_image()
    {
        // Not in the spec; Distribution's behaviour for old clients, which Wharf follows.
        var name = UniqueName("index");
        var arm64 = await Client.PushImageAsync(name, null);
        var amd64 = await Client.PushImageAsync(name, null);
        var index = Index([(arm64.Digest, arm64.Manifest.Length, OciManifest, "linux", "arm64"), (amd64.Digest, amd64.Manifest.Length, OciManifest, "linux", "amd64")]);
        await Client.PushManifestAsync(name, "multi", index, OciIndex);

        using var response = await Client.GetAsync($"/v2/{name}/manifests/multi", OciManifest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(amd64.Manifest, await BodyAsync(response));
        Assert.Equal(amd64.Digest, Header(response, "Docker-Content-Digest"));
    }

    [Theory(Timeout = 30000)]
    [InlineData("\"linux/amd64\"")]
    [InlineData("{\"os\":5,\"architecture\":[\"amd64\"]}")]
    public async Task Index_with_a_malformed_platform_asked_for_an_image_returns_404_not_500(string platform)
    {
        var name = UniqueName("platform");
        var image = await Client.PushImageAsync(name, null);
        var index = System.Text.Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{OciIndex}\",\"manifests\":[{{\"mediaType\":\"{OciManifest}\",\"digest\":\"{image.Digest}\",\"size\":{image.Manifest.Length},\"platform\":{platform}}}]}}");
        await Client.PushManifestAsync(name, "multi", index, OciIndex);
        using var response = await Client.GetAsync($"/v2/{name}/manifests/multi", OciManifest);
        await AssertErrorAsync(response, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_without_accept_header_is_served_as_pushed()
    {
        var image = await Client.PushImageAsync(UniqueName("pull"), "v1");
        using var response = await Client.GetAsync($"/v2/{image.Repository}/manifests/v1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(OciManifest, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(image.Manifest, await BodyAsync(response));
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_linked_only_by_another_repository_returns_404_BLOB_UNKNOWN()
    {
        var image = await Client.PushImageAsync(UniqueName("owner"), "v1");
        var other = UniqueName("stranger");
        await Client.PushBlobAsync(other, RandomBytes(10)); // the repository exists, but does not link the layer
        using var get = await Client.GetAsync($"/v2/{other}/blobs/{image.LayerDigest}");
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
        using var head = await Client.HeadAsync($"/v2/{other}/blobs/{image.LayerDigest}");
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_of_another_repository_returns_404_MANIFEST_UNKNOWN()
    {
        var image = await Client.PushImageAsync(UniqueName("owner"), "v1");
        var other = UniqueName("stranger");
        await Client.PushImageAsync(other, "v1");
        using var get = await Client.GetAsync($"/v2/{other}/manifests/{image.Digest}");
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Repository_named_with_blobs_and_uploads_components_is_served()
    {
        var name = UniqueName("routes") + "/blobs/uploads";
        var image = await Client.PushImageAsync(name, "v1");
        using var blob = await Client.GetAsync($"/v2/{name}/blobs/{image.LayerDigest}");
        Assert.Equal(image.Layer, await BodyAsync(blob));
        using var manifest = await Client.GetAsync($"/v2/{name}/manifests/v1");
        Assert.Equal(image.Manifest, await BodyAsync(manifest));
        using var tags = await Client.GetAsync($"/v2/{name}/tags/list");
        Assert.Equal(name, (await JsonAsync(tags))["name"]!.GetValue<string>());
    }

    [Fact(Timeout = 30000)]
    public async Task Index_of_indexes_is_pushed_and_pulled()
    {
        var name = UniqueName("nested");
        var inner = new List<(string Digest, long Size, string MediaType, string Os, string Architecture)>();
        for (var i = 0; i < 2; i++)
        {
            var amd64 = await Client.PushImageAsync(name, null);
            var arm64 = await Client.PushImageAsync(name, null);
            var index = Index([(amd64.Digest, amd64.Manifest.Length, OciManifest, "linux", "amd64"), (arm64.Digest, arm64.Manifest.Length, OciManifest, "linux", "arm64")]);
            inner.Add((await Client.PushManifestAsync(name, Sha256(index), index, OciIndex), index.Length, OciIndex, "linux", "amd64"));
        }
        var outer = Index(inner);
        var digest = await Client.PushManifestAsync(name, "index-of-index", outer, OciIndex);
        using var response = await Client.GetAsync($"/v2/{name}/manifests/index-of-index", OciIndex, OciManifest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(outer, await BodyAsync(response));
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Empty_index_is_pushed_and_pulled()
    {
        var name = UniqueName("empty-index");
        var index = Index([]);
        var digest = await Client.PushManifestAsync(name, "index", index, OciIndex);
        using var response = await Client.GetAsync($"/v2/{name}/manifests/{digest}", OciIndex);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(index, await BodyAsync(response));
        Assert.Equal(OciIndex, response.Content.Headers.ContentType?.MediaType);
    }

    [Fact(Timeout = 30000)]
    public async Task Artifact_with_an_empty_config_is_pushed_and_pulled()
    {
        var name = UniqueName("artifact");
        var empty = "{}"u8.ToArray();
        var layer = RandomBytes(300);
        await Client.PushBlobAsync(name, empty);
        await Client.PushBlobAsync(name, layer);
        var manifest = ImageManifest(empty, [layer], artifactType: "application/vnd.example.config.v1+json", configMediaType: "application/vnd.oci.empty.v1+json");
        var digest = await Client.PushManifestAsync(name, "artifact", manifest);
        using var response = await Client.GetAsync($"/v2/{name}/manifests/artifact", OciIndex, OciManifest);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(manifest, await BodyAsync(response));
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_of_a_repository_that_does_not_exist_returns_404_MANIFEST_UNKNOWN()
    {
        using var byTag = await Client.GetAsync($"/v2/{UniqueName("nothing")}/manifests/latest");
        await AssertErrorAsync(byTag, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var byDigest = await Client.GetAsync($"/v2/{UniqueName("nothing")}/manifests/{Sha256([1, 2, 3])}");
        await AssertErrorAsync(byDigest, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }
}
