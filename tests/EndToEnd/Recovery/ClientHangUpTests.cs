using System.Net;
using System.Net.Http.Headers;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>A client whose connection drops in the middle of a chunk asks where the upload stands and carries on.</summary>
[Collection(SharedRegistry.Name)]
public sealed class ClientHangUpTests(RegistryFixture fixture)
{
    private const int ChunkSize = 1 << 20;

    [Fact(Timeout = 120_000)]
    public async Task Client_hanging_up_mid_chunk_resumes_from_the_acknowledged_offset()
    {
        var ct = TestContext.Current.CancellationToken;
        var data = new byte[2 * ChunkSize + 777];
        Random.Shared.NextBytes(data);
        var digest = OciLayout.Sha256(data);
        const string repository = "e2e/hangup/blob";
        var http = fixture.Http;

        using var started = await http.PostAsync($"v2/{repository}/blobs/uploads/", null, ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var location = started.Headers.Location!.ToString();
        using (var first = await http.SendAsync(Patch(location, data, 0, ChunkSize), ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }

        // Chunk 2: half of it goes out, then the client gives up and closes its connection.
        using (var dropping = new HttpClient { BaseAddress = fixture.Registry.BaseAddress })
        {
            var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var request = new HttpRequestMessage(HttpMethod.Patch, location)
            {
                Content = new InterruptedUploadTests.StallingContent(data.AsMemory(ChunkSize, ChunkSize), ChunkSize / 2, sent),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            request.Content.Headers.ContentLength = ChunkSize;
            request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{ChunkSize}-{2 * ChunkSize - 1}");
            using var hangUp = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var inFlight = dropping.SendAsync(request, hangUp.Token);
            await sent.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await Task.Delay(300, ct);
            await hangUp.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => inFlight);
        }

        // The server notices the hang-up and frees the upload; until then it may answer 416 (another writer).
        HttpResponseMessage? status = null;
        for (var attempt = 0; attempt < 100; attempt++)
        {
            status?.Dispose();
            status = await http.GetAsync(location, ct);
            Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
            Assert.Equal($"0-{ChunkSize - 1}", status.Headers.GetValues("Range").Single());
            using var rest = await http.SendAsync(Patch(location, data, ChunkSize, data.Length - ChunkSize), ct);
            if (rest.StatusCode == HttpStatusCode.Accepted)
            {
                Assert.Equal($"0-{data.Length - 1}", rest.Headers.GetValues("Range").Single());
                TestContext.Current.TestOutputHelper?.WriteLine($"resumed after {attempt} refusals");
                break;
            }
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, rest.StatusCode);
            await Task.Delay(100, ct);
        }
        status?.Dispose();

        using var put = await http.PutAsync($"{location}{(location.Contains('?') ? '&' : '?')}digest={digest}", null, ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        var served = await http.GetByteArrayAsync($"v2/{repository}/blobs/{digest}", ct);
        Assert.Equal(digest, OciLayout.Sha256(served));
    }

    private static HttpRequestMessage Patch(string location, byte[] data, int offset, int count)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ByteArrayContent(data, offset, count) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + count - 1}");
        return request;
    }
}
