using System.Net;

namespace Wharf.Tests.Observability;

/// <summary>
/// <c>/metrics</c> of the all-in-one after known traffic: each counter moved by exactly what the traffic did. The
/// request counters are recorded when a response has been sent, so a scrape right after it may be a moment early:
/// the tests scrape until the request count arrives, then check everything else.
/// </summary>
[Collection(AllInOneCollection.Name)]
public sealed class MetricsTests(AllInOneFixture registry)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Http => registry.Http;

    [Fact(Timeout = 30_000)]
    public async Task A_push_and_a_pull_move_the_request_byte_and_store_counters_by_their_sizes()
    {
        var repo = "obs/metrics-" + Guid.NewGuid().ToString("N")[..8];
        var before = await registry.ScrapeAsync(Ct);

        var (config, layer, manifest) = await Push.ImageAsync(Http, repo, "v1", 100_000, Ct);
        for (var i = 0; i < 2; i++)
        {
            using var get = await Http.GetAsync($"v2/{repo}/manifests/v1", Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(manifest, await get.Content.ReadAsByteArrayAsync(Ct));
        }
        using (var missing = await Http.GetAsync($"v2/{repo}/manifests/nope", Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            var errorLength = (await missing.Content.ReadAsByteArrayAsync(Ct)).Length;
            using var blob = await Http.GetAsync($"v2/{repo}/blobs/{Push.Sha256(layer)}", Ct);
            Assert.Equal(layer, await blob.Content.ReadAsByteArrayAsync(Ct));
            using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{Push.Sha256(layer)}"), Ct);
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);

            var after = await ScrapeUntilAsync(before, "wharf_http_requests_total", 10);
            double Delta(string name, params string[] labels) => after.Sum(name, labels) - before.Sum(name, labels);

            Assert.Equal(2, Delta("wharf_http_requests_total", "route=manifest", "method=GET", "code=200"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=manifest", "method=GET", "code=404"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=manifest", "method=PUT", "code=201"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=upload", "method=POST", "code=202"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=upload", "method=POST", "code=201"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=upload", "method=PATCH", "code=202"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=upload", "method=PUT", "code=201"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=blob", "method=GET", "code=200"));
            Assert.Equal(1, Delta("wharf_http_requests_total", "route=blob", "method=HEAD", "code=200"));
            Assert.Equal(10, Delta("wharf_http_request_duration_seconds_count"));
            Assert.Equal(2, Delta("wharf_http_request_duration_seconds_bucket", "route=manifest", "method=GET", "code=200", "le=+Inf"));

            Assert.Equal(config.Length + layer.Length, Delta("wharf_http_received_bytes_total", "route=upload"));
            Assert.Equal(manifest.Length, Delta("wharf_http_received_bytes_total", "route=manifest"));
            Assert.Equal(layer.Length, Delta("wharf_http_sent_bytes_total", "route=blob"));
            Assert.Equal(2 * manifest.Length + errorLength, Delta("wharf_http_sent_bytes_total", "route=manifest"));

            // The byte service took the three blobs (config, layer, manifest) and gave back the layer and the manifest
            // once: the second manifest GET came from the gateway's caches (DESIGN principle 7).
            Assert.Equal(config.Length + layer.Length + manifest.Length, Delta("wharf_bytes_client_transferred_bytes_total", "direction=write"));
            Assert.Equal(layer.Length + manifest.Length, Delta("wharf_bytes_client_transferred_bytes_total", "direction=read"));
            Assert.Equal(1, Delta("wharf_manifest_cache_lookups_total", "cache=resolution", "result=hit"));
            Assert.Equal(2, Delta("wharf_manifest_cache_lookups_total", "cache=resolution", "result=miss"));
            Assert.Equal(1, Delta("wharf_manifest_cache_lookups_total", "cache=body", "result=hit"));
            Assert.Equal(1, Delta("wharf_manifest_cache_lookups_total", "cache=body", "result=miss"));
            Assert.True(after.Sum("wharf_manifest_cache_size_bytes") >= manifest.Length);
            Assert.Equal(2, Delta("wharf_bytes_client_calls_total", "method=WriteBlob", "outcome=ok"));
            Assert.Equal(1, Delta("wharf_bytes_client_calls_total", "method=AppendUpload", "outcome=ok"));
            Assert.Equal(1, Delta("wharf_bytes_client_calls_total", "method=CommitUpload", "outcome=ok"));
            Assert.Equal(0, Delta("wharf_bytes_client_calls_total", "outcome=error"));

            // Replicated log appends (acknowledged by W = 1 owner here): the repository's three (config link, layer
            // link, manifest), the catalog shard's one (a new repository), the upload session's three (start, the
            // chunk, the end); each timed once. The repository's and the upload's grains each recovered a log.
            Assert.Equal(7, Delta("wharf_log_appends_total", "outcome=acknowledged"));
            Assert.Equal(0, Delta("wharf_log_appends_total", "outcome=unavailable"));
            Assert.Equal(7, Delta("wharf_log_append_duration_seconds_count"));
            Assert.True(Delta("wharf_log_recoveries_total", "outcome=ok") >= 2);
            Assert.Equal(0, Delta("wharf_log_deposed_total"));

            // The layer (above the 32 KiB inline threshold) is a file; the config and manifest are RocksDB values.
            Assert.True(Delta("wharf_store_blob_files") >= 1);
            Assert.True(Delta("wharf_store_blob_size_bytes") >= layer.Length);
            Assert.True(after.Sum("wharf_store_keys") > 0);
            Assert.True(after.Sum("wharf_store_db_size_bytes") > 0);
            Assert.Equal(0, after.Sum("wharf_upload_requests_in_flight"));
            Assert.True(after.Sum("orleans_catalog_activations", "grain_type=wharf.repository") >= 1);
            Assert.True(after.Sum("wharf_placement_view_epoch") >= 1);
            Assert.Equal(1, after.Sum("wharf_placement_view_nodes", "state=active"));
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Listing_routes_are_counted_under_their_own_labels()
    {
        var repo = "obs/routes-" + Guid.NewGuid().ToString("N")[..8];
        await Push.ImageAsync(Http, repo, "v1", 10, Ct);
        var before = await registry.ScrapeAsync(Ct);
        foreach (var path in new[] { "v2/", "v2/_catalog", $"v2/{repo}/tags/list", $"v2/{repo}/referrers/{Push.Sha256([1])}", "v2/not/an/endpoint" })
        {
            using var r = await Http.GetAsync(path, Ct);
        }
        var after = await ScrapeUntilAsync(before, "wharf_http_requests_total", 5);
        foreach (var route in new[] { "base", "catalog", "tags", "referrers", "other" })
        {
            Assert.Equal(1, after.Sum("wharf_http_requests_total", $"route={route}", "method=GET") - before.Sum("wharf_http_requests_total", $"route={route}", "method=GET"));
        }
        // Health and metrics endpoints are not registry requests.
        Assert.DoesNotContain("route=\"metrics\"", after.Text);
    }

    [Fact(Timeout = 30_000)]
    public async Task An_unfinished_upload_is_in_progress_until_it_is_cancelled()
    {
        var repo = "obs/uploads-" + Guid.NewGuid().ToString("N")[..8];
        var before = (await registry.ScrapeAsync(Ct)).Sum("wharf_store_uploads_in_progress");
        using var start = await Http.PostAsync($"v2/{repo}/blobs/uploads/", null, Ct);
        var location = start.Headers.Location!.ToString();
        using var chunk = new ByteArrayContent(new byte[1000]);
        chunk.Headers.TryAddWithoutValidation("Content-Range", "0-999");
        using var patch = await Http.PatchAsync(location, chunk, Ct);
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        Assert.Equal(before + 1, (await registry.ScrapeAsync(Ct)).Sum("wharf_store_uploads_in_progress"));

        using var cancel = await Http.DeleteAsync(patch.Headers.Location!.ToString(), Ct);
        Assert.Equal(HttpStatusCode.NoContent, cancel.StatusCode);
        Assert.Equal(before, (await registry.ScrapeAsync(Ct)).Sum("wharf_store_uploads_in_progress"));
    }

    private async Task<PrometheusText> ScrapeUntilAsync(PrometheusText before, string counter, double delta)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            var now = await registry.ScrapeAsync(Ct);
            if (now.Sum(counter) - before.Sum(counter) >= delta || DateTime.UtcNow > deadline)
            {
                return now;
            }
            await Task.Delay(50, Ct);
        }
    }
}
