using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Issue 11: a rolling restart of every silo, one at a time, the way an operator upgrades (SIGTERM, wait for the exit,
/// start it again on the same data folder and ports, wait for <c>/readyz</c> before the next), while pullers pull
/// through both gateways. R = 3, W = 2 on 3 silos: every repository keeps two owners up throughout (DESIGN principles
/// 3 and 4: a restart moves nothing, and a repository's grain is led again from another owner while its node is away).
/// </summary>
public sealed partial class RollingRestartTests
{
    /// <summary>Pullers running at once, alternating between the gateways pull by pull.</summary>
    private const int Pullers = 4;

    /// <summary>Load kept on the whole cluster before the first restart and after each silo is ready again.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    private static ITestOutputHelper? Output => TestContext.Current.TestOutputHelper;

    [Fact(Timeout = 180_000)]
    public async Task Every_silo_restarted_in_turn_under_pull_load_serves_every_pull_byte_identical_and_copies_no_blob_bytes()
    {
        var ct = TestContext.Current.CancellationToken;
        var total = Stopwatch.StartNew();
        await using var cluster = await ClusterProcesses.StartAsync(3, 2, ct, replicas: 3);
        using var gateways = new GatewayClients(cluster);

        // Several repositories, a few layers each, one of them above 1 MiB (a blob file beside RocksDB on every owner).
        var images = new List<RawImage>();
        for (var i = 0; i < 4; i++)
        {
            var image = Image($"e2e/roll/r{i}", "v1", [16 << 10, 200 << 10, (1 << 20) + (i * 300 << 10)]);
            await PushAsync(gateways.All[i % 2], image);
            images.Add(image);
        }
        foreach (var http in gateways.All)
        {
            foreach (var image in images)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }
        var blobsBefore = cluster.Silos.Select(s => BlobFiles(s.Process.DataPath)).ToList();

        var load = new PullLoad(gateways.All, images);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pullers = Enumerable.Range(0, Pullers).Select(p => Task.Run(() => load.RunAsync(p, stop.Token), CancellationToken.None)).ToList();
        var restarts = new List<Restart>();
        try
        {
            await Task.Delay(Settle, ct);
            foreach (var silo in cluster.Silos)
            {
                var from = load.Elapsed;
                var clock = Stopwatch.StartNew();
                await silo.Process.StopAsync(TimeSpan.FromSeconds(30));
                var exited = clock.Elapsed;
                await silo.Process.StartAgainAsync(ct);
                var ready = clock.Elapsed;
                await Task.Delay(Settle, ct);
                restarts.Add(new Restart(silo.SiloEndpoint, from, load.Elapsed, exited, ready));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(pullers);
        }

        // Every silo back in membership and in the view, and every image whole through both gateways.
        await cluster.WaitUntilFormedAsync(TimeSpan.FromSeconds(30), ct);
        foreach (var http in gateways.All)
        {
            foreach (var image in images)
            {
                await RawOci.AssertServedAsync(http, image);
            }
        }
        var blobsAfter = cluster.Silos.Select(s => BlobFiles(s.Process.DataPath)).ToList();

        var results = load.Results.OrderBy(r => r.At).ToList();
        foreach (var restart in restarts)
        {
            var window = results.Where(r => r.At >= restart.From && r.At < restart.To).ToList();
            var (run, runSpan) = LongestFailureRun(window);
            Output?.WriteLine($"restart {restart.Silo}: exited {restart.Exited.TotalSeconds:0.0} s after SIGTERM, /readyz 200 after "
                + $"{restart.Ready.TotalSeconds:0.0} s; {window.Count(r => r.Ok)} pulls, {window.Count(r => !r.Ok)} failed, "
                + $"longest run of failures {run} ({runSpan.TotalSeconds:0.0} s)");
        }
        var failures = results.Where(r => !r.Ok).ToList();
        var retries = new List<string>();
        foreach (var gateway in cluster.Gateways)
        {
            retries.Add(await ReadRetriesAsync(gateway.BaseAddress, ct));
        }
        Output?.WriteLine($"read-only grain calls the gateways asked again while grains moved: {string.Join("; ", retries)}");
        Output?.WriteLine($"in all: {total.Elapsed.TotalSeconds:0.0} s; {results.Count(r => r.Ok)} pulls verified byte for byte "
            + $"({load.Requests} requests, {load.Bytes / (1 << 20)} MiB) by {Pullers} pullers through {gateways.All.Count} gateways; "
            + $"{failures.Count} failed (client-visible){(failures.Count == 0 ? "" : ": " + string.Join("; ", failures.Take(10).Select(f => $"{f.At.TotalSeconds:0.0} s {f.Error}")))}");

        Assert.Empty(load.Corrupt);
        Assert.True(results.Count(r => r.Ok) >= restarts.Count * 10, $"too few pulls to say anything: {results.Count(r => r.Ok)}");
        for (var i = 0; i < cluster.Silos.Count; i++)
        {
            // A restart moves nothing (DESIGN principle 3): no blob file on any silo was added, removed or rewritten.
            // (Pulls write nothing, so no hinted copy is due either.)
            Assert.Equal(blobsBefore[i], blobsAfter[i]);
        }
        Assert.Empty(failures);
    }

    /// <summary>A gateway's <c>wharf_grain_read_retries_total</c> by outcome, as text.</summary>
    private static async Task<string> ReadRetriesAsync(Uri gateway, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync("metrics", ct);
        var counts = RetryLine().Matches(text).Select(m => $"{m.Groups[1].Value} {double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)}").ToList();
        return $"{gateway.Authority}: {(counts.Count == 0 ? "none" : string.Join(", ", counts))}";
    }

    [GeneratedRegex("""^wharf_grain_read_retries_total\{[^}]*outcome="(\w+)"[^}]*\}\s+(\S+)""", RegexOptions.Multiline)]
    private static partial Regex RetryLine();

    /// <summary>The longest run of consecutive failed pulls (in completion order) and the time from its first to its last.</summary>
    private static (int Count, TimeSpan Span) LongestFailureRun(IReadOnlyList<PullResult> window)
    {
        var (best, bestSpan, run) = (0, TimeSpan.Zero, 0);
        var start = TimeSpan.Zero;
        foreach (var r in window)
        {
            if (r.Ok)
            {
                run = 0;
                continue;
            }
            if (run++ == 0)
            {
                start = r.At;
            }
            if (run > best)
            {
                (best, bestSpan) = (run, r.At - start);
            }
        }
        return (best, bestSpan);
    }

    /// <summary>Every blob file a silo keeps beside RocksDB, with its size and last write: equal sets mean no byte was copied.</summary>
    private static SortedDictionary<string, (long, DateTime)> BlobFiles(string dataPath)
    {
        var root = Path.Combine(dataPath, "blobs");
        var files = new SortedDictionary<string, (long, DateTime)>(StringComparer.Ordinal);
        foreach (var file in new DirectoryInfo(root).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            files[Path.GetRelativePath(root, file.FullName)] = (file.Length, file.LastWriteTimeUtc);
        }
        return files;
    }

    internal static RawImage Image(string repository, string tag, int[] layerSizes)
    {
        var config = RawOci.Config($"{repository}-{tag}-{Guid.NewGuid():N}");
        var layers = layerSizes.Select(size => RawOci.RandomBytes(size)).Select(b => (OciLayout.Sha256(b), b)).ToList();
        var configBlob = (OciLayout.Sha256(config), config);
        var manifest = RawOci.Manifest(configBlob, layers, $"{repository}-{tag}");
        return new RawImage(repository, tag, manifest, OciLayout.Sha256(manifest), [configBlob, .. layers]);
    }

    internal static async Task PushAsync(HttpClient http, RawImage image)
    {
        foreach (var (_, bytes) in image.Blobs)
        {
            await RawOci.PushMonolithicAsync(http, image.Repository, bytes);
        }
        await RawOci.PutManifestAsync(http, image.Repository, image.Tag, image.Manifest);
    }

    private sealed record Restart(string Silo, TimeSpan From, TimeSpan To, TimeSpan Exited, TimeSpan Ready);

    /// <summary>One pull (manifest by tag, then every blob) as a client saw it, stamped when it ended.</summary>
    internal sealed record PullResult(TimeSpan At, bool Ok, string? Error);

    /// <summary>
    /// Pullers that pull whole images as a client does, each pull through the other gateway from its last, and record
    /// every pull: a pull fails when any of its answers is not 200 or does not come; a 200 with other bytes is corrupt.
    /// </summary>
    internal sealed class PullLoad(IReadOnlyList<HttpClient> gateways, IReadOnlyList<RawImage> images)
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private long requests, bytes;

        public ConcurrentBag<PullResult> Results { get; } = [];
        public ConcurrentBag<string> Corrupt { get; } = [];
        public TimeSpan Elapsed => clock.Elapsed;
        public long Requests => Interlocked.Read(ref requests);
        public long Bytes => Interlocked.Read(ref bytes);

        public async Task RunAsync(int puller, CancellationToken stop)
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var http = gateways[(puller + i) % gateways.Count];
                var image = images[(puller + i * Pullers) % images.Count];
                string? error;
                try
                {
                    error = await PullAsync(http, image, stop);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    error = $"{http.BaseAddress} {image.Repository}: {e.GetType().Name} {e.Message}";
                }
                Results.Add(new PullResult(clock.Elapsed, error is null, error));
                if (error is not null)
                {
                    // A client would wait Retry-After; a short pause keeps a burst of quick 503s from flooding the count.
                    await Task.Delay(100, CancellationToken.None);
                }
            }
        }

        private async Task<string?> PullAsync(HttpClient http, RawImage image, CancellationToken ct)
        {
            var (status, body, response) = await RawOci.GetAsync(http, $"v2/{image.Repository}/manifests/{image.Tag}", ct);
            response.Dispose();
            Interlocked.Increment(ref requests);
            if (status != HttpStatusCode.OK)
            {
                return $"{http.BaseAddress} manifest {image.Repository}:{image.Tag}: {(int)status} {System.Text.Encoding.UTF8.GetString(body)}";
            }
            if (!body.AsSpan().SequenceEqual(image.Manifest))
            {
                Corrupt.Add($"{http.BaseAddress} manifest {image.Repository}:{image.Tag}");
            }
            foreach (var (digest, expected) in image.Blobs)
            {
                var (blobStatus, blob, blobResponse) = await RawOci.GetAsync(http, $"v2/{image.Repository}/blobs/{digest}", ct);
                blobResponse.Dispose();
                Interlocked.Increment(ref requests);
                if (blobStatus != HttpStatusCode.OK)
                {
                    return $"{http.BaseAddress} blob {digest[..19]} of {image.Repository}: {(int)blobStatus} {System.Text.Encoding.UTF8.GetString(blob)}";
                }
                Interlocked.Add(ref bytes, blob.Length);
                if (!blob.AsSpan().SequenceEqual(expected))
                {
                    Corrupt.Add($"{http.BaseAddress} blob {digest} of {image.Repository}");
                }
            }
            return null;
        }
    }
}
