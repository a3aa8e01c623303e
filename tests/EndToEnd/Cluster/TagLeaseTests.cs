using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// DESIGN principle 7 across real processes: gateway B caches a repository's tags under the repository grain's lease,
/// and a tag moved or deleted through gateway A is seen through B as soon as A acknowledged it — the grain revoked
/// B's lease first.
/// </summary>
[Collection(SharedCluster.Name)]
public sealed partial class TagLeaseTests(ClusterFixture fixture)
{
    private const int Moves = 6;

    [Fact(Timeout = 120_000)]
    public async Task A_tag_moved_or_deleted_through_one_gateway_is_served_so_by_the_other_at_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var repository = $"e2e/cluster/lease-{Guid.NewGuid():N}";
        var config = RawOci.Config(repository);
        var layer = RawOci.RandomBytes(4096);
        await RawOci.PushMonolithicAsync(fixture.A, repository, config);
        await RawOci.PushMonolithicAsync(fixture.A, repository, layer);
        var manifests = Enumerable.Range(0, Moves + 1)
            .Select(i => RawOci.Manifest((OciLayout.Sha256(config), config), [(OciLayout.Sha256(layer), layer)], $"{repository}#{i}"))
            .ToList();
        await RawOci.PutManifestAsync(fixture.A, repository, "moving", manifests[0]);
        var hitsBefore = await ResolutionHitsAsync(fixture.GatewayB.BaseAddress, ct);

        var firstMove = TimeSpan.Zero;
        for (var i = 1; i <= Moves; i++)
        {
            // B resolves the tag twice: the second answer comes from its cache, under its lease.
            await AssertTagAsync(fixture.B, repository, manifests[i - 1], ct);
            await AssertTagAsync(fixture.B, repository, manifests[i - 1], ct);

            var clock = Stopwatch.StartNew();
            await RawOci.PutManifestAsync(fixture.A, repository, "moving", manifests[i]);
            firstMove = i == 1 ? clock.Elapsed : firstMove;
            // Acknowledged: B must answer the new manifest now, not after its lease would have run out.
            await AssertTagAsync(fixture.B, repository, manifests[i], ct);
        }

        // The test is only worth something if B really answered from its cache.
        var hits = await ResolutionHitsAsync(fixture.GatewayB.BaseAddress, ct) - hitsBefore;
        Assert.True(hits >= Moves, $"gateway B answered {hits} resolutions from its cache; expected at least {Moves}");

        // Deleting the tag through A: B answers 404 at once; the manifest itself is still there by digest.
        var last = manifests[^1];
        await AssertTagAsync(fixture.B, repository, last, ct);
        using (var delete = await fixture.A.DeleteAsync($"v2/{repository}/manifests/moving", ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }
        await AssertMissingAsync(fixture.B, $"v2/{repository}/manifests/moving", ct);
        var digest = OciLayout.Sha256(last);
        await AssertServedAsync(fixture.B, $"v2/{repository}/manifests/{digest}", last, ct);
        await AssertServedAsync(fixture.B, $"v2/{repository}/manifests/{digest}", last, ct);

        // Deleting the manifest through A: B no longer serves it by digest, though it still holds the bytes.
        using (var delete = await fixture.A.DeleteAsync($"v2/{repository}/manifests/{digest}", ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }
        await AssertMissingAsync(fixture.B, $"v2/{repository}/manifests/{digest}", ct);
        TestContext.Current.TestOutputHelper?.WriteLine($"first move (a new activation waits one lease): {firstMove.TotalSeconds:F2} s; resolution hits on B: {hits}");
    }

    private static async Task AssertTagAsync(HttpClient http, string repository, byte[] manifest, CancellationToken ct) =>
        await AssertServedAsync(http, $"v2/{repository}/manifests/moving", manifest, ct);

    private static async Task AssertServedAsync(HttpClient http, string path, byte[] manifest, CancellationToken ct)
    {
        var (status, body, response) = await RawOci.GetAsync(http, path, ct);
        using (response)
        {
            Assert.True(status == HttpStatusCode.OK, $"GET {path} through {http.BaseAddress}: {(int)status} {Encoding.UTF8.GetString(body)}");
            Assert.Equal(OciLayout.Sha256(manifest), response.Headers.GetValues("Docker-Content-Digest").Single());
            Assert.Equal(manifest, body);
        }
    }

    private static async Task AssertMissingAsync(HttpClient http, string path, CancellationToken ct)
    {
        var (status, body, response) = await RawOci.GetAsync(http, path, ct);
        response.Dispose();
        Assert.True(status == HttpStatusCode.NotFound, $"GET {path} through {http.BaseAddress}: {(int)status} {Encoding.UTF8.GetString(body)}");
    }

    /// <summary>The gateway's <c>wharf_manifest_cache_lookups_total{cache="resolution",result="hit"}</c>.</summary>
    private static async Task<double> ResolutionHitsAsync(Uri gateway, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync("metrics", ct);
        var sum = 0.0;
        foreach (Match m in HitLine().Matches(text))
        {
            sum += double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        return sum;
    }

    [GeneratedRegex("""^wharf_manifest_cache_lookups_total\{(?=[^}]*cache="resolution")(?=[^}]*result="hit")[^}]*\}\s+(\S+)""", RegexOptions.Multiline)]
    private static partial Regex HitLine();
}
