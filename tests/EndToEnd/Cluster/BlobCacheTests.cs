using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// DESIGN principle 7 for blobs, across real processes: a gateway keeps a pulled blob in memory, so a pull storm of
/// one layer through it costs one read from a silo; ranges are answered from the copy; and the copy never lets a
/// repository serve a blob it does not link.
/// </summary>
[Collection(SharedCluster.Name)]
public sealed partial class BlobCacheTests(ClusterFixture fixture)
{
    [Fact(Timeout = 120_000)]
    public async Task A_pull_storm_of_one_layer_through_a_gateway_reads_it_from_a_silo_once_and_serves_every_client_the_same_bytes()
    {
        var ct = TestContext.Current.CancellationToken;
        var repository = $"e2e/cluster/blobcache-{Guid.NewGuid():N}";
        var layer = RawOci.RandomBytes(3 << 20);
        var digest = OciLayout.Sha256(layer);
        await RawOci.PushMonolithicAsync(fixture.A, repository, layer);
        var readsBefore = await MetricAsync(fixture.GatewayB.BaseAddress, ReadCallLine(), ct);
        var hitsBefore = await MetricAsync(fixture.GatewayB.BaseAddress, HitLine(), ct);

        // 24 clients at once, then 8 more one after another, all through gateway B.
        var storm = Enumerable.Range(0, 24).Select(_ => RawOci.GetAsync(fixture.B, $"v2/{repository}/blobs/{digest}", ct)).ToArray();
        foreach (var (status, body, response) in await Task.WhenAll(storm))
        {
            response.Dispose();
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True(body.AsSpan().SequenceEqual(layer), "a client of the storm got other bytes");
        }
        for (var i = 0; i < 8; i++)
        {
            var (status, body, response) = await RawOci.GetAsync(fixture.B, $"v2/{repository}/blobs/{digest}", ct);
            response.Dispose();
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True(body.AsSpan().SequenceEqual(layer));
        }

        // A range of it, from the gateway's copy.
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repository}/blobs/{digest}"))
        {
            request.Headers.Range = new RangeHeaderValue(1_000_000, 1_999_999);
            using var response = await fixture.B.SendAsync(request, ct);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal($"bytes 1000000-1999999/{layer.Length}", response.Content.Headers.ContentRange?.ToString());
            Assert.True((await response.Content.ReadAsByteArrayAsync(ct)).AsSpan().SequenceEqual(layer.AsSpan(1_000_000, 1_000_000)));
        }

        var reads = await MetricAsync(fixture.GatewayB.BaseAddress, ReadCallLine(), ct) - readsBefore;
        var hits = await MetricAsync(fixture.GatewayB.BaseAddress, HitLine(), ct) - hitsBefore;
        Assert.True(reads == 1, $"gateway B read the layer from silos {reads} times for 33 GETs; expected once");
        Assert.True(hits >= 8, $"gateway B answered {hits} GETs from its blob cache; expected at least the 8 after the storm");

        // Another repository does not link the layer: the gateway's copy must not serve it there.
        var other = $"e2e/cluster/blobcache-other-{Guid.NewGuid():N}";
        await RawOci.PushMonolithicAsync(fixture.A, other, RawOci.RandomBytes(1024));
        var (otherStatus, otherBody, otherResponse) = await RawOci.GetAsync(fixture.B, $"v2/{other}/blobs/{digest}", ct);
        otherResponse.Dispose();
        Assert.True(otherStatus == HttpStatusCode.NotFound, $"{(int)otherStatus} {Encoding.UTF8.GetString(otherBody)}");
        Assert.Contains("BLOB_UNKNOWN", Encoding.UTF8.GetString(otherBody));
        TestContext.Current.TestOutputHelper?.WriteLine($"33 GETs of a 3 MiB layer through gateway B: {reads} silo read(s), {hits} cache hits");
    }

    private static async Task<double> MetricAsync(Uri gateway, Regex line, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync("metrics", ct);
        var sum = 0.0;
        foreach (Match m in line.Matches(text))
        {
            sum += double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        return sum;
    }

    [GeneratedRegex("""^wharf_bytes_client_calls_total\{(?=[^}]*method="Read")[^}]*\}\s+(\S+)""", RegexOptions.Multiline)]
    private static partial Regex ReadCallLine();

    [GeneratedRegex("""^wharf_blob_cache_lookups_total\{(?=[^}]*result="hit")[^}]*\}\s+(\S+)""", RegexOptions.Multiline)]
    private static partial Regex HitLine();
}
