using System.Net;
using System.Net.Http.Headers;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Push": monolithic and chunked blob uploads, mounts, and manifests.</summary>
[Collection(RegistryCollection.Name)]
public sealed class PushTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    private static ByteArrayContent Chunk(byte[] bytes, long start)
    {
        var content = Octets(bytes);
        content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + bytes.Length - 1}");
        return content;
    }

    private async Task AssertBlobAsync(string name, string digest, byte[] expected)
    {
        using var response = await Client.GetAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, await BodyAsync(response));
        Assert.Equal(digest, Header(response, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Post_then_put_creates_the_blob_with_location_and_digest()
    {
        var name = UniqueName("push");
        var blob = RandomBytes(2000);
        var digest = Sha256(blob);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest), Octets(blob));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(digest, Header(put, "Docker-Content-Digest"));
        Assert.Equal($"/v2/{name}/blobs/{digest}", put.Headers.Location?.OriginalString);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Blob_larger_than_Kestrels_default_body_limit_is_accepted_by_put_and_single_post()
    {
        // Kestrel refuses bodies over 30 MB by default (FACTS); layers are routinely larger.
        var name = UniqueName("big");
        var blob = RandomBytes(33 * 1024 * 1024);
        var digest = await Client.PushBlobAsync(name, blob);
        using (var head = await Client.HeadAsync($"/v2/{name}/blobs/{digest}"))
        {
            Assert.Equal(blob.Length, head.Content.Headers.ContentLength);
        }
        var other = UniqueName("big");
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{other}/blobs/uploads/?digest={digest}", Octets(blob));
        Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        using var tail = await Client.GetRangeAsync($"/v2/{other}/blobs/{digest}", "bytes=-16");
        Assert.Equal(blob[^16..], await BodyAsync(tail));
    }

    [Fact(Timeout = 30000)]
    public async Task Single_post_with_digest_creates_the_blob()
    {
        var name = UniqueName("push");
        var blob = RandomBytes(2000);
        var digest = Sha256(blob);
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={digest}", Octets(blob));
        Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        Assert.Equal($"/v2/{name}/blobs/{digest}", post.Headers.Location?.OriginalString);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Single_post_with_wrong_digest_returns_400_DIGEST_INVALID()
    {
        var name = UniqueName("push");
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={Sha256([9])}", Octets(RandomBytes(100)));
        await AssertErrorAsync(post, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Chunked_patches_with_content_range_then_put_create_the_blob()
    {
        var name = UniqueName("chunked");
        var blob = RandomBytes(250 * 1024);
        var location = await Client.StartUploadAsync(name);
        for (var start = 0; start < blob.Length; start += 64 * 1024)
        {
            var end = Math.Min(blob.Length, start + 64 * 1024);
            using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[start..end], start));
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            Assert.Equal($"0-{end - 1}", Header(patch, "Range"));
            location = patch.Headers.Location!.OriginalString;
        }
        var digest = Sha256(blob);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Streamed_patch_without_content_range_then_put_creates_the_blob()
    {
        var name = UniqueName("streamed");
        var blob = RandomBytes(200 * 1024);
        var location = await Client.StartUploadAsync(name);
        // No Content-Length and no Content-Range: the body arrives with chunked transfer encoding.
        var content = new StreamContent(new NonSeekableStream(blob));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, content);
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        Assert.Equal($"0-{blob.Length - 1}", Header(patch, "Range"));
        var digest = Sha256(blob);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(patch.Headers.Location!.OriginalString, "digest=" + digest));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Patch_with_content_length_and_no_content_range_appends()
    {
        var name = UniqueName("streamed");
        var blob = RandomBytes(3000);
        var location = await Client.StartUploadAsync(name);
        using var first = await Client.SendAsync(HttpMethod.Patch, location, Octets(blob[..1000]));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        using var second = await Client.SendAsync(HttpMethod.Patch, first.Headers.Location!.OriginalString, Octets(blob[1000..]));
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal("0-2999", Header(second, "Range"));
        var digest = Sha256(blob);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(second.Headers.Location!.OriginalString, "digest=" + digest));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Upload_status_returns_204_with_location_and_range()
    {
        var name = UniqueName("status");
        var location = await Client.StartUploadAsync(name);
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(500), 0));
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        using var status = await Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-499", Header(status, "Range"));
        Assert.Equal(location, status.Headers.Location?.OriginalString);
    }

    [Fact(Timeout = 30000)]
    public async Task Put_with_the_final_chunk_in_its_body_creates_the_blob()
    {
        var name = UniqueName("final");
        var blob = RandomBytes(3000);
        var location = await Client.StartUploadAsync(name);
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[..2000], 0));
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        var digest = Sha256(blob);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(patch.Headers.Location!.OriginalString, "digest=" + digest), Chunk(blob[2000..], 2000));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Delete_cancels_the_upload_and_it_is_unknown_afterwards()
    {
        var name = UniqueName("cancel");
        var location = await Client.StartUploadAsync(name);
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(100), 0));
        using var delete = await Client.DeleteAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        using var status = await Client.GetAsync(location);
        await AssertErrorAsync(status, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        using var again = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(100), 100));
        await AssertErrorAsync(again, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task Chunk_out_of_order_returns_416()
    {
        var name = UniqueName("order");
        var blob = RandomBytes(3000);
        var location = await Client.StartUploadAsync(name);
        using var first = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[..1000], 0));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        using var gap = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[2000..], 2000));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, gap.StatusCode);
        Assert.Equal(location, gap.Headers.Location?.OriginalString);
        // The session survives, and GET tells where to continue (spec.md "Pushing a blob in chunks").
        using var status = await Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-999", Header(status, "Range"));
        using var resumed = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[1000..], 1000));
        Assert.Equal(HttpStatusCode.Accepted, resumed.StatusCode);
        var digest = Sha256(blob);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Overlapping_chunk_returns_416()
    {
        var name = UniqueName("overlap");
        var blob = RandomBytes(2000);
        var location = await Client.StartUploadAsync(name);
        using var first = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[..1000], 0));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        using var overlap = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[500..], 500));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, overlap.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Final_chunk_out_of_order_on_put_returns_416()
    {
        var name = UniqueName("order");
        var blob = RandomBytes(2000);
        var location = await Client.StartUploadAsync(name);
        using var first = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[..1000], 0));
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob)), Chunk(blob[1500..], 1500));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, put.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Put_with_the_wrong_digest_returns_400_DIGEST_INVALID()
    {
        var name = UniqueName("digest");
        var blob = RandomBytes(1000);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256([1, 2, 3])), Octets(blob));
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        using var get = await Client.GetAsync($"/v2/{name}/blobs/{Sha256([1, 2, 3])}");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Put_without_digest_returns_400_DIGEST_INVALID()
    {
        var location = await Client.StartUploadAsync(UniqueName("digest"));
        using var put = await Client.SendAsync(HttpMethod.Put, location, Octets(RandomBytes(10)));
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Mount_from_a_repository_that_links_the_blob_returns_201()
    {
        var source = UniqueName("mount-src");
        var target = UniqueName("mount-dst");
        var blob = RandomBytes(1000);
        var digest = await Client.PushBlobAsync(source, blob);
        using var mount = await Client.SendAsync(HttpMethod.Post, $"/v2/{target}/blobs/uploads/?mount={digest}&from={source}");
        Assert.Equal(HttpStatusCode.Created, mount.StatusCode);
        Assert.Equal($"/v2/{target}/blobs/{digest}", mount.Headers.Location?.OriginalString);
        Assert.Equal(digest, Header(mount, "Docker-Content-Digest"));
        await AssertBlobAsync(target, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Mount_from_a_repository_without_the_blob_opens_an_upload_with_202()
    {
        var holder = UniqueName("mount-holder");
        var empty = UniqueName("mount-empty");
        var target = UniqueName("mount-dst");
        var digest = await Client.PushBlobAsync(holder, RandomBytes(1000));
        await Client.PushBlobAsync(empty, RandomBytes(10));
        // The registry holds the bytes, but `from` does not link them: mounting would leak another repository's blob.
        using var mount = await Client.SendAsync(HttpMethod.Post, $"/v2/{target}/blobs/uploads/?mount={digest}&from={empty}");
        Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
        var location = mount.Headers.Location!.OriginalString;
        using var status = await Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        using var blob = await Client.HeadAsync($"/v2/{target}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.NotFound, blob.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Sha512_upload_and_manifest_work_end_to_end()
    {
        var name = UniqueName("sha512");
        var layer = RandomBytes(5000);
        var config = "{\"os\":\"linux\"}"u8.ToArray();
        foreach (var blob in new[] { layer, config })
        {
            var location = await Client.StartUploadAsync(name, "?digest-algorithm=sha512");
            using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob, 0));
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(patch.Headers.Location!.OriginalString, "digest=" + Sha512(blob)));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(Sha512(blob), Header(put, "Docker-Content-Digest"));
            await AssertBlobAsync(name, Sha512(blob), blob);
        }
        var manifest = System.Text.Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{OciManifest}\",\"config\":{{\"mediaType\":\"{OciConfig}\",\"digest\":\"{Sha512(config)}\",\"size\":{config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"{OciLayer}\",\"digest\":\"{Sha512(layer)}\",\"size\":{layer.Length}}}]}}");
        using var putManifest = await Client.PutManifestAsync(name, Sha512(manifest), manifest, OciManifest);
        Assert.Equal(HttpStatusCode.Created, putManifest.StatusCode);
        Assert.Equal(Sha512(manifest), Header(putManifest, "Docker-Content-Digest"));
        using var get = await Client.GetAsync($"/v2/{name}/manifests/{Sha512(manifest)}", OciManifest);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(manifest, await BodyAsync(get));
        Assert.Equal(Sha512(manifest), Header(get, "Docker-Content-Digest"));
    }

    [Fact(Timeout = 30000)]
    public async Task Sha512_upload_in_several_uneven_chunks_keeps_its_hash_state()
    {
        var name = UniqueName("sha512");
        var blob = RandomBytes(300_001);
        var location = await Client.StartUploadAsync(name, "?digest-algorithm=sha512");
        var cuts = new[] { 0, 1, 129, 70_000, 200_003, blob.Length };
        for (var i = 0; i + 1 < cuts.Length; i++)
        {
            using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[cuts[i]..cuts[i + 1]], cuts[i]));
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            location = patch.Headers.Location!.OriginalString;
        }
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha512(blob)));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, Sha512(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Sha512_upload_closed_with_a_sha256_digest_returns_400_DIGEST_INVALID()
    {
        var blob = RandomBytes(100);
        var location = await Client.StartUploadAsync(UniqueName("sha512"), "?digest-algorithm=sha512");
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob)), Octets(blob));
        await AssertErrorAsync(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact(Timeout = 30000)]
    public async Task Sha512_single_post_with_digest_creates_the_blob()
    {
        var name = UniqueName("sha512");
        var blob = RandomBytes(3000);
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={Sha512(blob)}", Octets(blob));
        Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        await AssertBlobAsync(name, Sha512(blob), blob);
    }

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
    public async Task The_same_large_blob_pushed_to_two_repositories_is_stored_once()
    {
        var blob = RandomBytes(300 * 1024); // above the 128 KiB inline threshold: a file under blobs/
        var digest = await Client.PushBlobAsync(UniqueName("dedupe-a"), blob);
        var second = UniqueName("dedupe-b");
        await Client.PushBlobAsync(second, blob);
        await AssertBlobAsync(second, digest, blob);
        var hex = digest["sha256:".Length..];
        Assert.Single(Directory.EnumerateFiles(Path.Combine(registry.DataPath, "blobs"), "*", SearchOption.AllDirectories), f => f.Contains(hex, StringComparison.Ordinal));
    }

    [Fact(Timeout = 30000)]
    public async Task Empty_blob_can_be_pushed_and_pulled()
    {
        var name = UniqueName("empty");
        var digest = Sha256([]);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + digest));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var get = await Client.GetAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(0, get.Content.Headers.ContentLength);
        Assert.Equal(digest, Header(get, "Docker-Content-Digest"));
        // No byte range of an empty representation can be satisfied (RFC 9110 §14.1.1).
        using var range = await Client.GetRangeAsync($"/v2/{name}/blobs/{digest}", "bytes=0-");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, range.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Empty_blob_single_post_with_digest_creates_it()
    {
        var name = UniqueName("empty");
        var digest = Sha256([]);
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={digest}", Octets([]));
        Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        using var head = await Client.HeadAsync($"/v2/{name}/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(0, head.Content.Headers.ContentLength);
    }

    [Fact(Timeout = 30000)]
    public async Task Single_post_with_digest_accepts_a_streamed_body()
    {
        var name = UniqueName("post-stream");
        var blob = RandomBytes(200 * 1024);
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={Sha256(blob)}", new StreamContent(new NonSeekableStream(blob)));
        Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        await AssertBlobAsync(name, Sha256(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Digest_parameter_with_an_encoded_colon_is_accepted()
    {
        var name = UniqueName("encoded");
        var blob = RandomBytes(100);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Uri.EscapeDataString(Sha256(blob))), Octets(blob));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, Sha256(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Completed_upload_session_is_unknown_afterwards()
    {
        var name = UniqueName("done");
        var blob = RandomBytes(100);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob)), Octets(blob));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var status = await Client.GetAsync(location);
        await AssertErrorAsync(status, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact(Timeout = 30000)]
    public async Task First_chunk_not_starting_at_zero_returns_416()
    {
        var location = await Client.StartUploadAsync(UniqueName("order"));
        using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(10), 5));
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, patch.StatusCode);
        using var status = await Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Concurrent_chunks_at_the_same_offset_accept_one_and_refuse_the_rest_with_416()
    {
        var location = await Client.StartUploadAsync(UniqueName("concurrent"));
        const int Size = 512 * 1024;
        var codes = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            using var response = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(Size), 0));
            return response.StatusCode;
        }));
        Assert.Single(codes, c => c == HttpStatusCode.Accepted);
        Assert.Equal(3, codes.Count(c => c == HttpStatusCode.RequestedRangeNotSatisfiable));
        using var status = await Client.GetAsync(location);
        Assert.Equal($"0-{Size - 1}", Header(status, "Range"));
    }

    [Fact(Timeout = 30000)]
    public async Task Upload_resumes_at_the_acknowledged_offset_after_a_client_aborts_a_chunk()
    {
        var name = UniqueName("abort");
        var blob = RandomBytes(300 * 1024);
        var location = await Client.StartUploadAsync(name);
        using (var first = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[..1000], 0)))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }
        var broken = new StreamContent(new FailingStream(blob[1000..], failAfter: 100 * 1024));
        broken.Headers.ContentLength = blob.Length - 1000;
        broken.Headers.TryAddWithoutValidation("Content-Range", $"1000-{blob.Length - 1}");
        await Assert.ThrowsAnyAsync<Exception>(() => Client.SendAsync(HttpMethod.Patch, location, broken));

        // The partial chunk was never acknowledged: the session still ends at byte 999.
        using (var status = await Client.GetAsync(location))
        {
            Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
            Assert.Equal("0-999", Header(status, "Range"));
        }
        // The aborted request may still be unwinding on the server and hold the chunk lease (416) for a moment.
        var resumed = HttpStatusCode.RequestedRangeNotSatisfiable;
        for (var attempt = 0; attempt < 50 && resumed == HttpStatusCode.RequestedRangeNotSatisfiable; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }
            using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob[1000..], 1000));
            resumed = patch.StatusCode;
        }
        Assert.Equal(HttpStatusCode.Accepted, resumed);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob)));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await AssertBlobAsync(name, Sha256(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Mount_without_from_opens_an_upload_with_202()
    {
        var digest = await Client.PushBlobAsync(UniqueName("mount-src"), RandomBytes(100));
        using var mount = await Client.SendAsync(HttpMethod.Post, $"/v2/{UniqueName("mount-dst")}/blobs/uploads/?mount={digest}");
        Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
        Assert.NotNull(mount.Headers.Location);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_over_4_MiB_without_content_length_returns_413()
    {
        var content = new StreamContent(new NonSeekableStream(new byte[5 * 1024 * 1024]));
        content.Headers.ContentType = new MediaTypeHeaderValue(OciManifest);
        using var put = await Client.SendAsync(HttpMethod.Put, $"/v2/{UniqueName("large")}/manifests/big", content);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, put.StatusCode);
    }

    [Fact(Timeout = 30000)]
    public async Task Chunked_upload_of_a_blob_already_stored_keeps_one_copy_and_no_part_file()
    {
        var blob = RandomBytes(300 * 1024);
        foreach (var name in new[] { UniqueName("dedupe-a"), UniqueName("dedupe-b") })
        {
            var location = await Client.StartUploadAsync(name);
            using var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob, 0));
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob)));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            var id = location[(location.LastIndexOf('/') + 1)..];
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(registry.DataPath, "uploads"), id + "*"));
            await AssertBlobAsync(name, Sha256(blob), blob);
        }
        var hex = Sha256(blob)["sha256:".Length..];
        Assert.Single(Directory.EnumerateFiles(Path.Combine(registry.DataPath, "blobs"), "*", SearchOption.AllDirectories), f => f.Contains(hex, StringComparison.Ordinal));
    }

    [Fact(Timeout = 30000)]
    public async Task Every_answer_of_a_push_and_pull_carries_Content_Length()
    {
        var name = UniqueName("length");
        var blob = RandomBytes(1000);
        var location = await Client.StartUploadAsync(name);
        var responses = new List<HttpResponseMessage>();
        try
        {
            responses.Add(await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/"));
            responses.Add(await Client.SendAsync(HttpMethod.Patch, location, Chunk(blob, 0)));
            responses.Add(await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(blob))));
            responses.Add(await Client.GetAsync($"/v2/{name}/blobs/{Sha256(blob)}"));
            responses.Add(await Client.HeadAsync($"/v2/{name}/blobs/{Sha256(blob)}"));
            responses.Add(await Client.GetRangeAsync($"/v2/{name}/blobs/{Sha256(blob)}", "bytes=5000-"));
            responses.Add(await Client.GetAsync($"/v2/{name}/blobs/{Sha256([])}"));
            responses.Add(await Client.GetAsync($"/v2/{name}/tags/list"));
            responses.Add(await Client.GetAsync("/v2/_catalog?n=1"));
            responses.Add(await Client.GetAsync($"/v2/{name}/referrers/{Sha256(blob)}"));
            responses.Add(await Client.GetAsync("/v2/"));
            foreach (var r in responses)
            {
                Assert.True(r.Content.Headers.ContentLength is not null, $"{r.RequestMessage!.Method} {r.RequestMessage.RequestUri} {(int)r.StatusCode} has no Content-Length");
            }
        }
        finally
        {
            responses.ForEach(r => r.Dispose());
        }
    }

    /// <summary>A stream that hides its length, so HttpClient sends it with chunked transfer encoding.</summary>
    private sealed class NonSeekableStream(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;
    }

    /// <summary>A body that fails part-way, as a client that dies mid-chunk.</summary>
    private sealed class FailingStream(byte[] content, int failAfter) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= failAfter)
            {
                throw new IOException("the client gave up");
            }
            return await base.ReadAsync(buffer[..Math.Min(buffer.Length, failAfter - (int)Position)], cancellationToken);
        }
    }
}
