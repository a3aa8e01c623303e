using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>
/// A chunked upload (POST, PATCH…, PUT ?digest=) whose server is killed with SIGKILL in the middle of a chunk resumes
/// after a restart from the last acknowledged offset, and the committed blob has exactly the pushed bytes.
/// </summary>
public sealed class InterruptedUploadTests
{
    private const int ChunkSize = 1 << 20;

    [Fact(Timeout = 180_000)]
    public async Task Upload_killed_mid_chunk_resumes_from_the_acknowledged_offset_after_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var registry = await RegistryProcess.StartAsync(ct);
        var data = new byte[3 * ChunkSize + 12345];
        Random.Shared.NextBytes(data);
        var digest = OciLayout.Sha256(data);
        const string repository = "e2e/resume/blob";

        string location;
        using (var http = NewClient(registry))
        {
            using var started = await http.PostAsync($"v2/{repository}/blobs/uploads/", null, ct);
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            location = started.Headers.Location!.ToString();

            using var first = await http.SendAsync(Patch(location, data, 0, ChunkSize), ct);
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
            Assert.Equal($"0-{ChunkSize - 1}", first.Headers.GetValues("Range").Single());

            // Chunk 2 announces its full length, sends a quarter of it, and stalls: the server is killed while it
            // waits for the rest.
            var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var stalled = new HttpRequestMessage(HttpMethod.Patch, location)
            {
                Content = new StallingContent(data.AsMemory(ChunkSize, ChunkSize), ChunkSize / 4, sent),
            };
            stalled.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            stalled.Content.Headers.ContentLength = ChunkSize;
            stalled.Content.Headers.TryAddWithoutValidation("Content-Range", $"{ChunkSize}-{2 * ChunkSize - 1}");
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var inFlight = http.SendAsync(stalled, stall.Token);
            await sent.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await Task.Delay(500, ct); // let the server take the bytes in and write them to the part file
            Assert.False(inFlight.IsCompleted, "the server answered a chunk it had not fully received");

            registry.Kill();
            // The client may not notice by itself while its own content stalls; the request ends here either way.
            await stall.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => inFlight);
        }

        await registry.StartAgainAsync(ct);

        using (var http = NewClient(registry))
        {
            using var status = await http.GetAsync(location, ct);
            Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
            Assert.Equal($"0-{ChunkSize - 1}", status.Headers.GetValues("Range").Single());

            using var rest = await http.SendAsync(Patch(location, data, ChunkSize, data.Length - ChunkSize), ct);
            Assert.Equal(HttpStatusCode.Accepted, rest.StatusCode);
            Assert.Equal($"0-{data.Length - 1}", rest.Headers.GetValues("Range").Single());

            var separator = location.Contains('?') ? '&' : '?';
            using var put = await http.PutAsync($"{location}{separator}digest={digest}", null, ct);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(digest, put.Headers.GetValues("Docker-Content-Digest").Single());

            var served = await http.GetByteArrayAsync($"v2/{repository}/blobs/{digest}", ct);
            Assert.Equal(data.Length, served.Length);
            Assert.Equal(digest, OciLayout.Sha256(served));
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task Monolithic_upload_killed_mid_body_leaves_no_blob_and_can_be_pushed_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var registry = await RegistryProcess.StartAsync(ct);
        var data = new byte[2 * ChunkSize];
        Random.Shared.NextBytes(data);
        var digest = OciLayout.Sha256(data);
        const string repository = "e2e/resume/monolithic";

        using (var http = NewClient(registry))
        {
            // POST ?digest= with the whole blob announced, half of it sent, then the server dies.
            var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var stalled = new HttpRequestMessage(HttpMethod.Post, $"v2/{repository}/blobs/uploads/?digest={digest}")
            {
                Content = new StallingContent(data, data.Length / 2, sent),
            };
            stalled.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            stalled.Content.Headers.ContentLength = data.Length;
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var inFlight = http.SendAsync(stalled, stall.Token);
            await sent.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await Task.Delay(500, ct);
            Assert.False(inFlight.IsCompleted, "the server answered a blob it had not fully received");
            registry.Kill();
            await stall.CancelAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => inFlight);
        }

        await registry.StartAgainAsync(ct);

        using (var http = NewClient(registry))
        {
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repository}/blobs/{digest}"), ct);
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);

            using var content = new ByteArrayContent(data);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var pushed = await http.PostAsync($"v2/{repository}/blobs/uploads/?digest={digest}", content, ct);
            Assert.Equal(HttpStatusCode.Created, pushed.StatusCode);
            var served = await http.GetByteArrayAsync($"v2/{repository}/blobs/{digest}", ct);
            Assert.Equal(digest, OciLayout.Sha256(served));
        }
    }

    private static HttpClient NewClient(RegistryProcess registry) =>
        new() { BaseAddress = registry.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };

    private static HttpRequestMessage Patch(string location, byte[] data, int offset, int count)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ByteArrayContent(data, offset, count) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + count - 1}");
        return request;
    }

    /// <summary>Sends the first <c>sendBefore</c> bytes, signals, then waits until the request is torn down.</summary>
    internal sealed class StallingContent(ReadOnlyMemory<byte> bytes, int sendBefore, TaskCompletionSource sent) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(bytes[..sendBefore], cancellationToken);
            await stream.FlushAsync(cancellationToken);
            sent.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return true;
        }
    }
}
