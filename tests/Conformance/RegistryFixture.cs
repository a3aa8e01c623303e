using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>
/// One all-in-one registry (Orleans silo + gateway) on a real Kestrel on 127.0.0.1, with its own temporary data
/// folder. Starting a silo costs a few seconds, so a collection shares one and every test uses its own repositories.
/// </summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    private RunningRegistry? _registry;

    public string DataPath { get; } = Path.Combine(Path.GetTempPath(), "wharf-conformance-" + Guid.NewGuid().ToString("N"));

    public RegistryClient Client => _registry?.Client ?? throw new InvalidOperationException("the registry is not started");

    /// <summary>The registry's services (its janitor, for one test).</summary>
    public IServiceProvider Services => _registry?.Services ?? throw new InvalidOperationException("the registry is not started");

    public async ValueTask InitializeAsync() => _registry = await RunningRegistry.StartAsync(DataPath);

    public async ValueTask DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }
        RunningRegistry.DeleteFolder(DataPath);
    }
}

[CollectionDefinition(Name)]
public sealed class RegistryCollection : ICollectionFixture<RegistryFixture>
{
    public const string Name = "registry";
}

/// <summary>A started all-in-one and a client for it; disposing stops it and leaves the data folder in place.</summary>
public sealed class RunningRegistry : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _http;

    private RunningRegistry(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        _http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        Client = new RegistryClient(_http);
    }

    public RegistryClient Client { get; }

    /// <summary>The registry's base address (http://127.0.0.1:port/), for tests that speak raw HTTP.</summary>
    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<RunningRegistry> StartAsync(string dataPath)
    {
        // Port 0: Kestrel binds a free port itself, so parallel test modules never race for one. Tag leases of 1 s
        // instead of 5: a new repository grain waits one lease before its first tag move or delete, which eight tests do.
        var app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={dataPath}", "--Wharf:Gateway:TagLeaseSeconds=1"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await app.StartAsync();
        var address = app.Urls.Single();
        return new RunningRegistry(app, new Uri(address.TrimEnd('/') + "/"));
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public static void DeleteFolder(string path)
    {
        for (var attempt = 0; attempt < 5 && Directory.Exists(path); attempt++)
        {
            try
            {
                Directory.Delete(path, recursive: true);
            }
            catch (IOException)
            {
                Thread.Sleep(200);
            }
        }
    }
}
