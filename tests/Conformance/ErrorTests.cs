using System.Net;
using System.Text;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Error Codes" and "Determining Support": bad input gets the spec's JSON error and status, never 500.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ErrorTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    [Fact(Timeout = 30000)]
    public async Task Base_endpoint_returns_200_with_the_api_version_header()
    {
        foreach (var path in new[] { "/v2/", "/v2" })
        {
            using var response = await Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("registry/2.0", Header(response, "Docker-Distribution-API-Version"));
        }
        using var head = await Client.HeadAsync("/v2/");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    [Theory(Timeout = 30000)]
    [InlineData("/v2/conformance/x/nonsense")]
    [InlineData("/v2/conformance/x/blobs")]
    [InlineData("/v2/_nothing")]
    [InlineData("/v2/conformance/x/manifests/")]
    public async Task Unknown_endpoint_returns_a_json_error_not_an_empty_404(string path)
    {
        using var response = await Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        await AssertErrorAsync(response, HttpStatusCode.NotFound, "UNSUPPORTED");
        Assert.Equal("registry/2.0", Header(response, "Docker-Distribution-API-Version"));
    }

    [Theory(Timeout = 30000)]
    [InlineData("PATCH", "/v2/conformance/x/manifests/latest")]
    [InlineData("DELETE", "/v2/_catalog")]
    [InlineData("PUT", "/v2/conformance/x/tags/list")]
    [InlineData("POST", "/v2/conformance/x/referrers/sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Unsupported_method_returns_405_UNSUPPORTED(string method, string path)
    {
        using var response = await Client.SendAsync(new HttpMethod(method), path);
        await AssertErrorAsync(response, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
    }

    [Theory(Timeout = 30000)]
    [InlineData("Upper/case")]
    [InlineData("conformance//double")]
    [InlineData("conformance/-leading")]
    [InlineData("conformance/trailing-")]
    [InlineData("conformance/a%2Fb")]
    [InlineData("conformance/dot..dot")]
    public async Task Invalid_repository_name_returns_400_NAME_INVALID(string name)
    {
        using var tags = await Client.GetAsync($"/v2/{name}/tags/list");
        await AssertErrorAsync(tags, HttpStatusCode.BadRequest, "NAME_INVALID");
        using var manifest = await Client.GetAsync($"/v2/{name}/manifests/latest");
        await AssertErrorAsync(manifest, HttpStatusCode.BadRequest, "NAME_INVALID");
        using var upload = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/");
        await AssertErrorAsync(upload, HttpStatusCode.BadRequest, "NAME_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Repository_name_of_255_characters_is_accepted()
    {
        var name = UniqueName("long");
        name += "/" + new string('a', 255 - name.Length - 1);
        Assert.Equal(255, name.Length);
        var digest = await Client.PushBlobAsync(name, RandomBytes(10));
        using var head = await Client.HeadAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Repository_name_over_255_characters_returns_400_NAME_INVALID()
    {
        var name = "conformance/" + new string('a', 250);
        using var response = await Client.GetAsync($"/v2/{name}/tags/list");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, "NAME_INVALID");
    }

    [Theory(Timeout = 30000)]
    [InlineData("-leading-dash")]
    [InlineData(".leading-dot")]
    [InlineData("has%21bang")]
    public async Task Invalid_tag_returns_400_TAG_INVALID(string tag)
    {
        var name = UniqueName("badtag");
        using var get = await Client.GetAsync($"/v2/{name}/manifests/{tag}");
        await AssertErrorAsync(get, HttpStatusCode.BadRequest, "TAG_INVALID");
        var image = await Client.PushImageAsync(name, null);
        using var put = await Client.PutManifestAsync(name, tag, image.Manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "TAG_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Tag_longer_than_128_characters_returns_400_TAG_INVALID()
    {
        using var response = await Client.GetAsync($"/v2/{UniqueName("badtag")}/manifests/{new string('t', 129)}");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, "TAG_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Invalid_tag_parameter_on_push_returns_400_TAG_INVALID()
    {
        var name = UniqueName("badtag");
        var image = await Client.PushImageAsync(name, null);
        using var put = await Client.PutManifestAsync(name, $"{image.Digest}?tag=ok&tag=-bad", image.Manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "TAG_INVALID");
        using var ok = await Client.HeadAsync($"/v2/{name}/manifests/ok");
        Assert.Equal(HttpStatusCode.NotFound, ok.StatusCode);
    }

    [Theory(Timeout = 30000)]
    [InlineData("sha256:abc")]
    [InlineData("sha256:ZZZZ000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("sha256:")]
    [InlineData("sha256:4BF5122F344554C53BDE2EBB8CD2B7E3D1600AD631C385A5D7CCE23C7785459A")]
    public async Task Invalid_digest_returns_400_DIGEST_INVALID(string digest)
    {
        var name = UniqueName("baddigest");
        using var blob = await Client.GetAsync($"/v2/{name}/blobs/{digest}");
        await AssertErrorAsync(blob, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        using var manifest = await Client.GetAsync($"/v2/{name}/manifests/{digest}");
        await AssertErrorAsync(manifest, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        using var delete = await Client.DeleteAsync($"/v2/{name}/blobs/{digest}");
        await AssertErrorAsync(delete, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={digest}", Octets([1, 2, 3]));
        await AssertErrorAsync(post, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest), Octets([1, 2, 3]));
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Head_error_answers_carry_no_body()
    {
        using var response = await Client.HeadAsync($"/v2/{UniqueName("head")}/manifests/v1");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Empty(await BodyAsync(response));
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_put_to_a_malformed_digest_returns_400_DIGEST_INVALID()
    {
        var name = UniqueName("baddigest");
        var image = await Client.PushImageAsync(name, null);
        using var put = await Client.PutManifestAsync(name, "sha256:baddigeststring", image.Manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Unsupported_digest_algorithm_for_an_upload_returns_400()
    {
        using var response = await Client.SendAsync(HttpMethod.Post, $"/v2/{UniqueName("alg")}/blobs/uploads/?digest-algorithm=md5");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Theory(Timeout = 30000)]
    [InlineData("0123456789abcdef0123456789abcdef")]
    [InlineData("not-an-upload-id")]
    public async Task Unknown_upload_id_returns_404_BLOB_UPLOAD_UNKNOWN(string id)
    {
        var location = $"/v2/{UniqueName("upload")}/blobs/uploads/{id}";
        using var get = await Client.GetAsync(location);
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, Octets([1, 2, 3]));
        await AssertErrorAsync(patch, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256([1, 2, 3])), Octets([1, 2, 3]));
        await AssertErrorAsync(put, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        using var delete = await Client.DeleteAsync(location);
        await AssertErrorAsync(delete, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Upload_addressed_through_another_repository_returns_404_BLOB_UPLOAD_UNKNOWN()
    {
        var owner = UniqueName("upload");
        var location = await Client.StartUploadAsync(owner);
        var id = location[(location.LastIndexOf('/') + 1)..];
        var foreign = $"/v2/{UniqueName("upload")}/blobs/uploads/{id}";
        using var get = await Client.GetAsync(foreign);
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        using var patch = await Client.SendAsync(HttpMethod.Patch, foreign, Octets([1, 2, 3]));
        await AssertErrorAsync(patch, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Unknown_blob_returns_404_BLOB_UNKNOWN()
    {
        var name = UniqueName("noblob");
        await Client.PushBlobAsync(name, RandomBytes(10));
        using var get = await Client.GetAsync($"/v2/{name}/blobs/{Sha256(RandomBytes(8))}");
        await AssertErrorAsync(get, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Tags_of_an_unknown_repository_return_404_NAME_UNKNOWN()
    {
        using var response = await Client.GetAsync($"/v2/{UniqueName("unknown")}/tags/list");
        await AssertErrorAsync(response, HttpStatusCode.NotFound, "NAME_UNKNOWN");
    }

    [Theory(Timeout = 30000)]
    [InlineData("-1")]
    [InlineData("many")]
    public async Task Invalid_page_size_returns_400_PAGINATION_NUMBER_INVALID(string n)
    {
        using var catalog = await Client.GetAsync($"/v2/_catalog?n={n}");
        await AssertErrorAsync(catalog, HttpStatusCode.BadRequest, "PAGINATION_NUMBER_INVALID");
        var name = UniqueName("paging");
        await Client.PushImageAsync(name, "v1");
        using var tags = await Client.GetAsync($"/v2/{name}/tags/list?n={n}");
        await AssertErrorAsync(tags, HttpStatusCode.BadRequest, "PAGINATION_NUMBER_INVALID");
    }

    [Theory(Timeout = 30000)]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"schemaVersion\":1}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"digest\":\"sha256:x\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"text/plain\",\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2.5,\"config\":{},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":1e20,\"config\":{},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":\"2\",\"config\":{},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"digest\":\"sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a\",\"size\":-1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"digest\":\"sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a\",\"size\":1},\"layers\":{}}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[1]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[],\"subject\":\"sha256:x\"}")]
    public async Task Malformed_manifest_returns_400_MANIFEST_INVALID(string body)
    {
        var name = UniqueName("badmanifest");
        using var put = await Client.PutManifestAsync(name, "v1", Encoding.UTF8.GetBytes(body), OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_whose_content_type_contradicts_its_media_type_returns_400_MANIFEST_INVALID()
    {
        var name = UniqueName("badmanifest");
        var image = await Client.PushImageAsync(name, null);
        using var put = await Client.PutManifestAsync(name, "v1", image.Manifest, DockerManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Chunk_whose_length_disagrees_with_its_content_range_is_refused()
    {
        var location = await Client.StartUploadAsync(UniqueName("size"));
        var content = Octets(RandomBytes(100));
        content.Headers.TryAddWithoutValidation("Content-Range", "0-199");
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, content);
        await AssertErrorAsync(patch, HttpStatusCode.BadRequest, "SIZE_INVALID");
    }

    [Theory(Timeout = 30000)]
    [InlineData("v2%0A", "")]
    [InlineData("v2", "?tag=v3%0A")]
    [InlineData("v2%0D%0A", "")]
    public async Task A_tag_ending_in_a_line_break_returns_400_TAG_INVALID_and_is_not_stored(string reference, string query)
    {
        // .NET's regex $ matches before a final newline: "v2\n" was a valid tag, stored, and as a ?tag= it answered 500
        // (a newline in the OCI-Tag header) after storing it.
        var name = UniqueName("newline");
        var image = await Client.PushImageAsync(name, "v1");
        using var put = await Client.PutManifestAsync(name, reference + query, image.Manifest, OciManifest);
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "TAG_INVALID");
        using var tags = await Client.GetAsync($"/v2/{name}/tags/list");
        Assert.Equal(["v1"], (await JsonAsync(tags))["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
    }

    [Fact(Timeout = 30000)]
    public async Task A_manifest_with_a_repeated_member_or_half_a_surrogate_pair_returns_400_MANIFEST_INVALID()
    {
        var name = UniqueName("badjson");
        var image = await Client.PushImageAsync(name, null);
        var json = Encoding.UTF8.GetString(image.Manifest);
        foreach (var body in new[] { json[..^1] + ",\"layers\":[]}", json[..^1] + ",\"annotations\":{\"a\":\"\\udfff\\u0041\"}}", json[..^1] + ",\"a\\ud800\":1}" })
        {
            using var put = await Client.PutManifestAsync(name, "v1", Encoding.UTF8.GetBytes(body), OciManifest);
            await AssertErrorAsync(put, HttpStatusCode.BadRequest, "MANIFEST_INVALID");
        }
    }
}
