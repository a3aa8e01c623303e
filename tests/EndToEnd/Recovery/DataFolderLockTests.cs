using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Recovery;

/// <summary>
/// Two processes must never share a data folder: the second refuses to start and the first is unharmed. And a process
/// started inside its data folder (as this harness starts it) does not watch that folder for configuration changes.
/// </summary>
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

    [Fact(Timeout = 120_000)]
    public async Task Registry_started_in_its_data_folder_does_not_watch_the_data_folder()
    {
        // The configuration reload watcher is recursive on the host's content root. With the working directory as content
        // root, a registry started where its data lives handled an inotify event for every file it wrote.
        var registry = fixture.Registry;
        var source = new OciLayout(fixture.NewFolder("watch"));
        source.AddImage("v1", [256 << 10, 64 << 10]);
        await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{registry.Host}/e2e/watch/app:v1").EnsureSuccessAsync();

        var pid = registry.Pid ?? throw new InvalidOperationException("the shared registry is not running");
        var watched = new HashSet<string>();
        foreach (var fdinfo in Directory.EnumerateFiles($"/proc/{pid}/fdinfo"))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(fdinfo);
            }
            catch (IOException)
            {
                continue; // closed meanwhile
            }
            foreach (var line in lines.Where(l => l.StartsWith("inotify wd:", StringComparison.Ordinal)))
            {
                var ino = line.Split(' ').Single(p => p.StartsWith("ino:", StringComparison.Ordinal))[4..];
                watched.Add(Convert.ToUInt64(ino, 16).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        var folders = await ExternalProcess.RunAsync("find", [registry.DataPath, "-type", "d", "-printf", "%i\\n"],
            timeout: TimeSpan.FromSeconds(30), cancellationToken: TestContext.Current.CancellationToken);
        var dataFolders = folders.EnsureSuccess().StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        Assert.True(dataFolders.Count > 3, "the data folder has its db, blobs and uploads folders");
        Assert.Empty(watched.Intersect(dataFolders));
    }
}
