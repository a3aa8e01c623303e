using System.Diagnostics;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>
/// The registry dies (SIGKILL) while skopeo pushes a large layer. After a restart the same push, simply retried,
/// succeeds, and what is pulled back is exactly what was pushed.
/// </summary>
public sealed class InterruptedPushTests : IDisposable
{
    private readonly ContainerTools tools = new();
    private readonly string scratch = TempFolders.Create("wharf-e2e-push-");

    public void Dispose()
    {
        tools.Dispose();
        TempFolders.TryDelete(scratch);
    }

    [Fact(Timeout = 180_000)]
    public async Task Push_retried_after_the_registry_was_killed_mid_layer_succeeds()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var registry = await RegistryProcess.StartAsync(ct);
        var source = new OciLayout(Path.Combine(scratch, "src"));
        var image = source.AddImage("v1", [96 << 20, 2 << 20]);
        var target = $"docker://{registry.Host}/e2e/interrupted/app:v1";

        var push = tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), target);
        // Kill as soon as upload bytes reach the registry's part files (README: uploads/ under the data folder).
        var uploads = Path.Combine(registry.DataPath, "uploads");
        var watch = Stopwatch.StartNew();
        while (!push.IsCompleted && watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (Directory.Exists(uploads) && Directory.EnumerateFiles(uploads).Any(f => new FileInfo(f).Length > 4 << 20))
            {
                break;
            }
            await Task.Delay(5, ct);
        }
        registry.Kill();
        var interrupted = await push; // skopeo fails (or, if it won the race, finished first); the retry must work either way
        TestContext.Current.TestOutputHelper?.WriteLine(interrupted.Succeeded
            ? "the first push finished before the kill"
            : $"the first push failed as the registry died: {interrupted.StdErr.Trim().Split('\n')[^1]}");

        await registry.StartAgainAsync(ct);
        await tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), target).EnsureSuccessAsync();

        using var http = new HttpClient { BaseAddress = registry.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        Assert.Equal(image.Manifest.Digest, await http.ManifestDigestAsync("e2e/interrupted/app", "v1"));
        var back = Path.Combine(scratch, "back");
        await tools.SkopeoAsync("copy", "--src-tls-verify=false", target, $"oci:{back}:v1").EnsureSuccessAsync();
        Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);
        foreach (var layer in image.Layers)
        {
            Assert.Equal(layer.Digest, OciLayout.Sha256File(Path.Combine(back, "blobs", "sha256", layer.Digest[7..])));
        }
    }
}
