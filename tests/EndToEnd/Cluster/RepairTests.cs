using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Anti-entropy between real silo processes (3 silos, 2 gateways, R = 3, W = 2, Redis membership): what was written
/// while one silo was stopped reaches it after it returns, without any new write, and a tag deleted meanwhile stays
/// deleted. Passes are started through each silo's <c>POST /admin/repair</c> (the background loop runs every 30 s).
/// </summary>
public sealed class RepairTests
{
    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record Pass(long LogsHeld, long LogsUnderReplicated, long LogEntriesPulled, long BlobsHeld, long BlobsUnderReplicated, long BlobsPulled, long HintsPending, long BytesMoved, int PeersUnreachable);

    private sealed record Status(string Node, long BytesMoved, Pass? LastPass);

    [Fact(Timeout = 240_000)]
    public async Task Writes_a_stopped_silo_missed_reach_it_after_it_returns_and_a_tag_deleted_meanwhile_stays_deleted()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct, replicas: 3);
        using var gateways = new GatewayClients(cluster);
        using var admin = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };

        var kept = ReplicationTests.RandomImage("e2e/repair/kept", "v1");
        var retired = ReplicationTests.RandomImage("e2e/repair/retired", "v1");
        await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, kept, chunked: false, 0), ct);
        await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, retired, chunked: true, 1), ct);

        var victim = cluster.Silos[2];
        await victim.Process.StopAsync(TimeSpan.FromSeconds(30));
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            !(await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(victim.SiloEndpoint),
            () => $"{victim.SiloEndpoint} is still Active after SIGTERM\n{cluster.Logs()}", ct);

        // While it is away: new images (monolithic and chunked) and a deleted tag, each acknowledged by two owners.
        var missed = new List<RawImage>();
        for (var i = 0; i < 4; i++)
        {
            var image = ReplicationTests.RandomImage($"e2e/repair/missed{i % 2}", $"t{i}");
            await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, image, chunked: i % 2 == 1, i), ct);
            missed.Add(image);
        }
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
        {
            using var response = await gateways.All[0].DeleteAsync($"v2/{retired.Repository}/manifests/{retired.Tag}", ct);
            return response.StatusCode == HttpStatusCode.Accepted;
        }, () => $"deleting {retired.Repository}:{retired.Tag} was not accepted\n{cluster.Logs()}", ct);

        var clock = Stopwatch.StartNew();
        await victim.Process.StartAgainAsync(ct);
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            (await cluster.StateAsync(cluster.Silos[0], ct)).IsActive(victim.SiloEndpoint),
            () => $"{victim.SiloEndpoint} is not Active again after a restart\n{cluster.Logs()}", ct);

        // No client writes from here on: only repair brings the missed writes to the returning silo.
        var rounds = 0;
        Status[] statuses = [];
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(90), async () =>
        {
            rounds++;
            statuses = [.. await Task.WhenAll(cluster.Silos.Select(s => RunPassAsync(admin, s, ct)))];
            return statuses.All(s => s.LastPass is { LogsUnderReplicated: 0, BlobsUnderReplicated: 0, HintsPending: 0, PeersUnreachable: 0 });
        }, () => $"not fully replicated after {rounds} rounds of passes: {JsonSerializer.Serialize(statuses)}\n{cluster.Logs()}", ct);
        var repaired = clock.Elapsed;

        // The returning silo holds every blob of every image, as files with the right bytes.
        foreach (var (digest, bytes) in missed.Concat([kept]).SelectMany(i => i.Blobs).Where(b => b.Bytes.Length > 32 << 10))
        {
            var path = Path.Combine(victim.Process.DataPath, "blobs", "sha256", digest[7..9], digest[7..]);
            Assert.True(File.Exists(path), $"{digest} is not on the returning silo ({path})");
            Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path, ct))));
        }
        var victimStatus = statuses[2];
        Assert.True(victimStatus.LastPass!.BlobsHeld >= missed.Sum(i => i.Blobs.Count), JsonSerializer.Serialize(victimStatus));
        Assert.True(victimStatus.BytesMoved >= missed.Sum(i => i.Blobs.Sum(b => (long)b.Bytes.Length)), JsonSerializer.Serialize(victimStatus));

        // The returning silo's metrics say the same: the bytes and blobs it pulled, the log entries it caught up on,
        // and nothing under-replicated on any silo.
        var metrics = await admin.GetStringAsync(new Uri(victim.BaseAddress, "metrics"), ct);
        Assert.Equal(victimStatus.BytesMoved, Metric(metrics, "wharf_repair_moved_bytes_total"));
        Assert.True(Metric(metrics, "wharf_repair_copies_total", "kind=\"blob\"") >= missed.Sum(i => i.Blobs.Count), metrics);
        Assert.True(Metric(metrics, "wharf_repair_copies_total", "kind=\"log\"") >= missed.Count, metrics);
        foreach (var silo in cluster.Silos)
        {
            var text = await admin.GetStringAsync(new Uri(silo.BaseAddress, "metrics"), ct);
            Assert.Equal(0, Metric(text, "wharf_repair_under_replicated"));
            Assert.True(Metric(text, "wharf_repair_last_pass_completed_seconds") > 0, text);
        }

        // Every image pulls back through both gateways; the deleted tag stays deleted (its manifest by digest remains).
        foreach (var http in gateways.All)
        {
            foreach (var image in missed.Append(kept))
            {
                await RawOci.AssertServedAsync(http, image);
            }
            var (status, _, response) = await RawOci.GetAsync(http, $"v2/{retired.Repository}/manifests/{retired.Tag}", ct);
            response.Dispose();
            Assert.Equal(HttpStatusCode.NotFound, status);
            (status, _, response) = await RawOci.GetAsync(http, $"v2/{retired.Repository}/manifests/{retired.ManifestDigest}", ct);
            response.Dispose();
            Assert.Equal(HttpStatusCode.OK, status);
        }
        Output?.WriteLine($"repair: every silo reported 0 under-replicated keys {repaired.TotalSeconds:0.0} s after the stopped silo was started again "
            + $"({rounds} round(s) of passes); the returning silo pulled {victimStatus.BytesMoved} bytes, "
            + $"{victimStatus.LastPass.LogsHeld} logs and {victimStatus.LastPass.BlobsHeld} blobs held");
    }

    /// <summary>The sum of a metric's samples in Prometheus text, over the series whose labels contain <paramref name="label"/>.</summary>
    private static double Metric(string text, string name, string? label = null) =>
        text.Split('\n')
            .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal))
            .Where(l => label is null || l.Contains(label, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    private static async Task<Status> RunPassAsync(HttpClient admin, SiloNode silo, CancellationToken ct)
    {
        using var response = await admin.PostAsync(new Uri(silo.BaseAddress, "admin/repair"), null, ct);
        response.EnsureSuccessStatusCode();
        return JsonSerializer.Deserialize<Status>(await response.Content.ReadAsStringAsync(ct), Json)!;
    }
}
