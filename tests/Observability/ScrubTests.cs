using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Observability;

/// <summary>
/// The scrubber in a running all-in-one (one node, so no other copy): a layer whose file rots on disk stops being
/// served rather than served wrong, the pass shows in <c>GET /admin/scrub</c> and in <c>wharf_scrub_*</c>, and the
/// layer pushed again is served again.
/// </summary>
public sealed class ScrubTests : IAsyncLifetime
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "wharf-scrub-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;
    private HttpClient _http = null!;

    public async ValueTask InitializeAsync()
    {
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={_dataPath}", "--Wharf:Scrub:StartDelay=00:00:00", "--Wharf:Scrub:Interval=00:00:00.200"],
            b => b.Logging.SetMinimumLevel(LogLevel.Critical))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.Single().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    [Fact(Timeout = 30_000)]
    public async Task A_rotten_layer_with_no_other_copy_is_no_longer_served_and_the_pass_is_visible()
    {
        var ct = TestContext.Current.CancellationToken;
        const string repo = "scrub/app";
        var rotten = RandomNumberGenerator.GetBytes(100_000);
        var sound = RandomNumberGenerator.GetBytes(100_000);
        await Push.MonolithicAsync(_http, repo, rotten, ct);
        await Push.MonolithicAsync(_http, repo, sound, ct);
        // Passes run back to back. One that listed the blobs before the second push was indexed would read the first
        // after it rots below and count it alone: let every pass that began before now end first, so that the pass
        // that finds the rot saw both blobs.
        var pushed = DateTimeOffset.UtcNow;
        for (var i = 0; i < 100; i++)
        {
            var admin = JsonDocument.Parse(await _http.GetStringAsync("admin/scrub", ct)).RootElement;
            if (admin.GetProperty("lastPass") is { ValueKind: JsonValueKind.Object } p && p.GetProperty("started").GetDateTimeOffset() > pushed)
            {
                break;
            }
            await Task.Delay(100, ct);
        }
        var hex = Push.Sha256(rotten)["sha256:".Length..];
        var file = Path.Combine(_dataPath, "blobs", "sha256", hex[..2], hex);
        await using (var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = 50_000;
            fs.WriteByte((byte)(rotten[50_000] ^ 0x01));
        }

        JsonElement pass = default;
        for (var i = 0; i < 100; i++)
        {
            var admin = JsonDocument.Parse(await _http.GetStringAsync("admin/scrub", ct)).RootElement;
            if (admin.GetProperty("lastPass") is { ValueKind: JsonValueKind.Object } p && p.GetProperty("unrepaired").GetInt64() == 1)
            {
                pass = p;
                break;
            }
            await Task.Delay(100, ct);
        }
        Assert.Equal(JsonValueKind.Object, pass.ValueKind);
        Assert.Equal(1, pass.GetProperty("corrupt").GetInt64());
        Assert.Equal(0, pass.GetProperty("repaired").GetInt64());

        using (var get = await _http.GetAsync($"v2/{repo}/blobs/{Push.Sha256(rotten)}", ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }
        using (var get = await _http.GetAsync($"v2/{repo}/blobs/{Push.Sha256(sound)}", ct))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(sound, await get.Content.ReadAsByteArrayAsync(ct));
        }
        Assert.Single(Directory.EnumerateFiles(Path.Combine(_dataPath, "corrupt")));

        using var metrics = await _http.GetAsync("metrics", ct);
        var text = new PrometheusText(await metrics.Content.ReadAsStringAsync(ct));
        Assert.Equal(1, text.Sum("wharf_scrub_corrupt_total"));
        Assert.Equal(1, text.Sum("wharf_scrub_unrepaired_total"));
        Assert.True(text.Sum("wharf_scrub_checked_total") >= 2);
        Assert.True(text.Sum("wharf_scrub_bytes_total") >= 200_000);
        Assert.True(text.Sum("wharf_scrub_last_pass_completed_seconds") > 0);

        await Push.MonolithicAsync(_http, repo, rotten, ct);
        using (var again = await _http.GetAsync($"v2/{repo}/blobs/{Push.Sha256(rotten)}", ct))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal(rotten, await again.Content.ReadAsByteArrayAsync(ct));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        for (var attempt = 0; attempt < 5 && Directory.Exists(_dataPath); attempt++)
        {
            try
            {
                Directory.Delete(_dataPath, recursive: true);
            }
            catch (IOException)
            {
                Thread.Sleep(200);
            }
        }
    }
}
