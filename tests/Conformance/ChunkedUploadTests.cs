using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Headers;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>
/// spec.md "Pushing a blob in chunks": PATCH with and without Content-Range, status, cancel, order and overlap (416),
/// and what a session keeps when a client dies mid-chunk (DESIGN principle 8).
/// </summary>
[Collection(RegistryCollection.Name)]
public sealed class ChunkedUploadTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    [Fact(Timeout = 30000)]
    public async Task An_upload_the_janitor_finds_untouched_past_the_cutoff_is_ended_and_its_bytes_removed()
    {
        var name = UniqueName("expired");
        var location = await Client.StartUploadAsync(name);
        using (var patch = await Client.SendAsync(HttpMethod.Patch, location, Chunk(RandomBytes(1000), 0)))
        {
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            location = patch.Headers.Location!.OriginalString;
        }
        var janitor = registry.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Wharf.Silo.Maintenance.UploadJanitor>().Single();

        // A cutoff in the future: every session is older than it. The session ends through its grain (its log).
        Assert.True(await janitor.SweepAsync(DateTimeOffset.UtcNow.AddMinutes(1)) >= 1);

        using var status = await Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        Assert.Contains("BLOB_UPLOAD_UNKNOWN", await status.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var id = location.Split('?')[0].TrimEnd('/').Split('/')[^1];
        Assert.False(File.Exists(Path.Combine(registry.DataPath, "uploads", id + ".part")));
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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, digest, blob);
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
        await Client.AssertBlobAsync(name, Sha512(blob), blob);
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
        await Client.AssertBlobAsync(name, Sha256(blob), blob);
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
            await Client.AssertBlobAsync(name, Sha256(blob), blob);
        }
        var hex = Sha256(blob)["sha256:".Length..];
        Assert.Single(Directory.EnumerateFiles(Path.Combine(registry.DataPath, "blobs"), "*", SearchOption.AllDirectories), f => f.Contains(hex, StringComparison.Ordinal));
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
