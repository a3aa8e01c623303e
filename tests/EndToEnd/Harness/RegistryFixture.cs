namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>One registry process, private client configuration and a scratch folder shared by a collection.</summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    private RegistryProcess? registry;

    public RegistryProcess Registry => registry ?? throw new InvalidOperationException("not started");
    public ContainerTools Tools { get; } = new();
    public string Scratch { get; } = TempFolders.Create("wharf-e2e-scratch-");

    public HttpClient Http { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        registry = await RegistryProcess.StartAsync();
        Http = new HttpClient { BaseAddress = registry.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>A new, empty folder for one test.</summary>
    public string NewFolder(string name) => Directory.CreateDirectory(Path.Combine(Scratch, $"{name}-{Guid.NewGuid():N}")).FullName;

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (registry is not null)
        {
            await registry.DisposeAsync();
        }
        Tools.Dispose();
        TempFolders.TryDelete(Scratch);
    }
}

[CollectionDefinition(Name)]
public sealed class SharedRegistry : ICollectionFixture<RegistryFixture>
{
    public const string Name = "shared registry";
}
