using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Observability;

/// <summary>An in-process all-in-one on a free loopback port with its own data folder, and an HTTP client for it.</summary>
public sealed class AllInOneFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public string DataPath { get; } = Path.Combine(Path.GetTempPath(), "wharf-obs-" + Guid.NewGuid().ToString("N"));

    public HttpClient Http { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={DataPath}", "--Wharf:Metrics:DiskScanInterval=00:00:00"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri(_app.Urls.Single().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task<PrometheusText> ScrapeAsync(CancellationToken ct)
    {
        using var response = await Http.GetAsync("metrics", ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType ?? "");
        return new PrometheusText(await response.Content.ReadAsStringAsync(ct));
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        for (var attempt = 0; attempt < 5 && Directory.Exists(DataPath); attempt++)
        {
            try
            {
                Directory.Delete(DataPath, recursive: true);
            }
            catch (IOException)
            {
                Thread.Sleep(200);
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class AllInOneCollection : ICollectionFixture<AllInOneFixture>
{
    public const string Name = "all-in-one";
}
