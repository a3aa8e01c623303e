using System.Net;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Pushing blobs" and "Mounting a blob": monolithic, chunked and streamed uploads, and mounts.</summary>
[Collection(RegistryCollection.Name)]
public sealed class PushTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, digest, blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Single_post_with_wrong_digest_returns_400_DIGEST_INVALID()
    {
        var name = UniqueName("push");
        using var post = await Client.SendAsync(HttpMethod.Post, $"/v2/{name}/blobs/uploads/?digest={Sha256([9])}", Octets(RandomBytes(100)));
        await AssertErrorAsync(post, HttpStatusCode.BadRequest, "DIGEST_INVALID");
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
        await Client.AssertBlobAsync(target, digest, blob);
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
            await Client.AssertBlobAsync(name, Sha512(blob), blob);
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
        await Client.AssertBlobAsync(name, Sha512(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task The_same_large_blob_pushed_to_two_repositories_is_stored_once()
    {
        var blob = RandomBytes(300 * 1024); // above the inline threshold: a file under blobs/
        var digest = await Client.PushBlobAsync(UniqueName("dedupe-a"), blob);
        var second = UniqueName("dedupe-b");
        await Client.PushBlobAsync(second, blob);
        await Client.AssertBlobAsync(second, digest, blob);
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
        await Client.AssertBlobAsync(name, Sha256(blob), blob);
    }

    [Fact(Timeout = 30000)]
    public async Task Digest_parameter_with_an_encoded_colon_is_accepted()
    {
        var name = UniqueName("encoded");
        var blob = RandomBytes(100);
        var location = await Client.StartUploadAsync(name);
        using var put = await Client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Uri.EscapeDataString(Sha256(blob))), Octets(blob));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        await Client.AssertBlobAsync(name, Sha256(blob), blob);
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
}
