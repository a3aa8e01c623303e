using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Wharf.Silo.Replication;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>
/// An upload's replicated log (<c>u/{id}</c>) is dropped when the upload ends, and stays dropped: a late call to a
/// finished upload (the chunk release after its PUT, a client asking for its status) or a request naming an upload id
/// nobody started must not bring the log back on the store for good. Each upload that did would leave its promise, and
/// a step-down marker, behind for ever (found in the R = 3 bench: two grain activations per upload). Its own registry,
/// restarted so that every activation deactivates (a clean stop steps every log down).
/// </summary>
public sealed class UploadLogTests : IAsyncLifetime
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "wharf-conformance-uploadlog-" + Guid.NewGuid().ToString("N"));

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        RunningRegistry.DeleteFolder(_dataPath);
        return ValueTask.CompletedTask;
    }

    [Fact(Timeout = 60000)]
    public async Task Finished_and_unknown_uploads_leave_no_live_log_on_the_store()
    {
        var name = UniqueName("uploadlog");
        var chunked = RandomBytes(50_000);
        var monolithic = RandomBytes(40_000);
        var unknown = Guid.NewGuid().ToString("N");
        string finished;
        await using (var first = await RunningRegistry.StartAsync(_dataPath))
        {
            var client = first.Client;
            finished = await client.StartUploadAsync(name);
            var head = Octets(chunked[..20_000]);
            head.Headers.TryAddWithoutValidation("Content-Range", "0-19999");
            using (var patch = await client.SendAsync(HttpMethod.Patch, finished, head))
            {
                Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            }
            using (var put = await client.SendAsync(HttpMethod.Put, WithQuery(finished, "digest=" + Sha256(chunked)), Octets(chunked[20_000..])))
            {
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            }
            await client.PushBlobAsync(name, monolithic);

            // Late and unknown calls: each answers BLOB_UPLOAD_UNKNOWN and wakes a grain that finds no record.
            foreach (var (method, path) in new[]
            {
                (HttpMethod.Get, finished),
                (HttpMethod.Get, $"/v2/{name}/blobs/uploads/{unknown}"),
                (HttpMethod.Patch, $"/v2/{name}/blobs/uploads/{unknown}"),
            })
            {
                using var response = await client.SendAsync(method, path, method == HttpMethod.Patch ? Octets([1, 2, 3]) : null);
                Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
                Assert.Contains("BLOB_UPLOAD_UNKNOWN", await response.Content.ReadAsStringAsync());
            }
        }

        await using var second = await RunningRegistry.StartAsync(_dataPath);
        var uploads = second.Services.GetRequiredService<LogReplica>().ListLogs().Where(l => l.Log.StartsWith("u/", StringComparison.Ordinal)).ToList();
        // Three upload logs were written (the chunked one, the monolithic one) or woken (the unknown id): each is
        // now a forgotten marker (purged after the tombstone retention), none a live log.
        Assert.NotEmpty(uploads);
        Assert.All(uploads, l => Assert.True(l.Forgotten, $"log {l.Log} is live (committed {l.Committed}) after its upload ended"));
        Assert.Contains(uploads, l => l.Log == "u/" + unknown);

        // The blobs are intact and the finished upload stays finished.
        foreach (var blob in new[] { chunked, monolithic })
        {
            using var response = await second.Client.GetAsync($"/v2/{name}/blobs/{Sha256(blob)}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(blob, await BodyAsync(response));
        }
        using var status = await second.Client.GetAsync(finished);
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
    }
}
