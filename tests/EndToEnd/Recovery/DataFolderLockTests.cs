using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>Two processes must never share a data folder: the second refuses to start and the first is unharmed.</summary>
[Collection(SharedRegistry.Name)]
public sealed class DataFolderLockTests(RegistryFixture fixture)
{
    [Fact(Timeout = 120_000)]
    public async Task Second_registry_on_a_data_folder_in_use_refuses_to_start_and_the_first_keeps_serving()
    {
        var registry = fixture.Registry;
        var second = await ExternalProcess.RunAsync("dotnet",
            [RegistryProcess.SiloAssemblyPath, "--urls", $"http://127.0.0.1:{RegistryProcess.FreePort()}", $"--Wharf:DataPath={registry.DataPath}"],
            timeout: TimeSpan.FromSeconds(60), cancellationToken: TestContext.Current.CancellationToken);

        // A clean refusal: exit code 2 and one line naming the folder, not a crash (134 = abort) or a second server.
        Assert.Equal(2, second.ExitCode);
        Assert.Contains(registry.DataPath, second.StdErr);
        Assert.DoesNotContain("Unhandled exception", second.StdErr + second.StdOut);

        var source = new OciLayout(fixture.NewFolder("lock"));
        var image = source.AddImage("v1", [64 << 10]);
        await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{registry.Host}/e2e/lock/app:v1").EnsureSuccessAsync();
        Assert.Equal(image.Manifest.Digest, await fixture.Http.ManifestDigestAsync("e2e/lock/app", "v1"));
    }
}
