using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>
/// What a registry acknowledged is still there after it stops (SIGTERM) or dies (SIGKILL) and starts again on the
/// same data folder and port. Each test owns its registry, because it kills it.
/// </summary>
public sealed class RestartTests : IDisposable
{
    private readonly ContainerTools tools = new();
    private readonly string scratch = TempFolders.Create("wharf-e2e-restart-");

    public void Dispose()
    {
        tools.Dispose();
        TempFolders.TryDelete(scratch);
    }

    [Fact(Timeout = 180_000)]
    public Task Pushed_image_survives_a_graceful_restart() => PushRestartPullAsync(registry => registry.StopAsync());

    [Fact(Timeout = 180_000)]
    public Task Pushed_image_survives_kill_9() => PushRestartPullAsync(registry =>
    {
        registry.Kill();
        return Task.CompletedTask;
    });

    private async Task PushRestartPullAsync(Func<RegistryProcess, Task> stop)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var registry = await RegistryProcess.StartAsync(ct);
        var source = new OciLayout(Path.Combine(scratch, "src"));
        var image = source.AddImage("v1", [2 << 20, 300 << 10, 4 << 10]);
        var amd64 = source.AddImage(null, [100 << 10], "amd64");
        var arm64 = source.AddImage(null, [100 << 10], "arm64");
        var index = source.AddIndex("multi", [amd64, arm64]);
        await tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{registry.Host}/e2e/restart/app:v1").EnsureSuccessAsync();
        await tools.SkopeoAsync("copy", "--all", "--dest-tls-verify=false", source.Reference("multi"), $"docker://{registry.Host}/e2e/restart/app:multi").EnsureSuccessAsync();

        await stop(registry);
        await registry.StartAgainAsync(ct);

        using var http = new HttpClient { BaseAddress = registry.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(image.Manifest.Digest, await http.ManifestDigestAsync("e2e/restart/app", "v1"));
        Assert.Equal(index.Digest, await http.ManifestDigestAsync("e2e/restart/app", "multi"));
        var back = Path.Combine(scratch, "back");
        await tools.SkopeoAsync("copy", "--src-tls-verify=false", $"docker://{registry.Host}/e2e/restart/app:v1", $"oci:{back}:v1").EnsureSuccessAsync();
        Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);
        foreach (var blob in image.Layers.Append(image.Config))
        {
            Assert.Equal(blob.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", blob.Digest[7..])));
        }
        var tags = await tools.SkopeoAsync("list-tags", "--tls-verify=false", $"docker://{registry.Host}/e2e/restart/app").EnsureSuccessAsync();
        Assert.Contains("\"multi\"", tags.StdOut);
        Assert.Contains("\"v1\"", tags.StdOut);
        var catalog = await http.GetStringAsync("v2/_catalog", TestContext.Current.CancellationToken);
        Assert.Contains("\"e2e/restart/app\"", catalog);
    }
}
