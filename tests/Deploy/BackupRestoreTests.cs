using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;
using Wharf.Cli;

namespace Wharf.Tests.Deploy;

/// <summary>The operator CLI against real all-in-ones: listing, deleting, status, and a backup taken while a writer
/// keeps pushing, restored into a fresh registry.</summary>
public sealed class BackupRestoreTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>One image as a client pulls it: a reference and the exact bytes of everything under it.</summary>
    private sealed record Pushed(string Repo, string Reference, string Digest, byte[] Body, Dictionary<string, byte[]> Content);

    private static async Task<(int Code, string Out, string Err)> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        console.Profile.Width = 200;
        var code = await WharfCli.RunAsync(args, console, errors, Ct);
        return (code, output.ToString(), errors.ToString());
    }

    private static byte[] Random(int size) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(size);

    [Fact(Timeout = 240_000)]
    public async Task Backup_taken_while_a_writer_pushes_restores_every_image_acknowledged_before_it_byte_identical()
    {
        await using var source = await Registry.StartAsync();
        var acknowledged = new List<Pushed>();
        var shared = Random(1_500_000); // a base layer shared by two repositories

        // Single-arch images with several tags, one tag moved; a layer shared across repositories.
        var v1 = await source.PushImageAsync("team/app", "v1", [shared, Random(300_000)], Ct);
        var v2 = await source.PushImageAsync("team/app", "v2", [shared, Random(2_500_000), Random(10)], Ct);
        await source.PushManifestAsync("team/app", "latest", JsonNode.Parse(v2.Body)!.AsObject(), Registry.OciManifest, Ct);
        var baseImage = await source.PushImageAsync("lib/base", "1.0", [shared], Ct);

        // A multi-arch index with a referrer (an SBOM) and a referrer of that referrer (its signature).
        var amd64 = await source.PushImageAsync("team/multi", null, [Random(400_000)], Ct, platform: "linux/amd64");
        var arm64 = await source.PushImageAsync("team/multi", null, [Random(400_000)], Ct, platform: "linux/arm64");
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = Registry.OciIndex,
            ["manifests"] = new JsonArray(
                new JsonObject { ["mediaType"] = Registry.OciManifest, ["digest"] = amd64.Digest, ["size"] = amd64.Body.Length, ["platform"] = new JsonObject { ["os"] = "linux", ["architecture"] = "amd64" } },
                new JsonObject { ["mediaType"] = Registry.OciManifest, ["digest"] = arm64.Digest, ["size"] = arm64.Body.Length, ["platform"] = new JsonObject { ["os"] = "linux", ["architecture"] = "arm64" } }),
        };
        var multi = await source.PushManifestAsync("team/multi", "2.0", index, Registry.OciIndex, Ct);
        var sbom = await source.PushImageAsync("team/multi", null, [Random(5_000)], Ct,
            subject: $$"""{"mediaType":"{{Registry.OciIndex}}","digest":"{{multi.Digest}}","size":{{multi.Body.Length}}}""", artifactType: "application/spdx+json");
        var signature = await source.PushImageAsync("team/multi", null, [Random(600)], Ct,
            subject: $$"""{"mediaType":"{{Registry.OciManifest}}","digest":"{{sbom.Digest}}","size":{{sbom.Body.Length}}}""", artifactType: "application/vnd.example.signature");

        // Many tags in one repository (more than one page of the CLI's listing is not needed: n=1000).
        var manyTags = await source.PushImageAsync("team/tags", "t-000", [Random(1_000)], Ct);
        for (var i = 1; i < 40; i++)
        {
            await source.PushManifestAsync("team/tags", $"t-{i:000}", JsonNode.Parse(manyTags.Body)!.AsObject(), Registry.OciManifest, Ct);
        }

        foreach (var (repo, reference, image) in new[] { ("team/app", "v1", v1), ("team/app", "v2", v2), ("team/app", "latest", v2), ("lib/base", "1.0", baseImage), ("team/multi", "2.0", multi), ("team/multi", sbom.Digest, sbom), ("team/multi", signature.Digest, signature), ("team/tags", "t-017", manyTags), ("team/tags", "t-039", manyTags) })
        {
            acknowledged.Add(await CaptureAsync(source, repo, reference));
        }

        // A writer that keeps pushing new tags through the backup; what it got acknowledged before the backup
        // started must come back, what came later may or may not.
        using var stopWriter = new CancellationTokenSource();
        var writerAcks = new ConcurrentQueue<(string Tag, DateTime At)>();
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stopWriter.IsCancellationRequested; i++)
            {
                await source.PushImageAsync("live/writer", $"w-{i:0000}", [Random(200_000)], CancellationToken.None);
                writerAcks.Enqueue(($"w-{i:0000}", DateTime.UtcNow));
            }
        });
        while (writerAcks.Count < 5)
        {
            await Task.Delay(20, Ct);
        }
        var backupStarted = DateTime.UtcNow;
        foreach (var (tag, _) in writerAcks.Where(a => a.At < backupStarted).ToList())
        {
            acknowledged.Add(await CaptureAsync(source, "live/writer", tag));
        }

        var folder = Path.Combine(Path.GetTempPath(), "wharf-backup-" + Guid.NewGuid().ToString("N"));
        try
        {
            var backup = await CliAsync("--registry", source.Url, "backup", folder);
            Assert.True(backup.Code == 0, backup.Err);
            await stopWriter.CancelAsync();
            await writer;
            Assert.Contains("backed up 5 repositories", backup.Out, StringComparison.Ordinal);

            // The backup is plain OCI image layouts a person can read.
            var layout = Path.Combine(folder, "repositories", "team", "multi");
            Assert.Equal("""{"imageLayoutVersion":"1.0.0"}""", await File.ReadAllTextAsync(Path.Combine(layout, "oci-layout"), Ct));
            using (var indexJson = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json"), Ct)))
            {
                var entries = indexJson.RootElement.GetProperty("manifests").EnumerateArray().ToList();
                Assert.Contains(entries, e => e.GetProperty("digest").GetString() == multi.Digest && e.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString() == "2.0");
                Assert.Contains(entries, e => e.GetProperty("digest").GetString() == signature.Digest);
            }
            Assert.True(File.Exists(Path.Combine(layout, "blobs", "sha256", amd64.Digest[7..])));

            await using var target = await Registry.StartAsync();
            var restore = await CliAsync("--registry", target.Url, "restore", folder);
            Assert.True(restore.Code == 0, restore.Err);

            foreach (var image in acknowledged)
            {
                await AssertSameAsync(target, image);
            }
            // Referrers are discoverable again from their subject.
            var referrers = await target.GetAsync($"v2/team/multi/referrers/{multi.Digest}", Ct);
            Assert.Contains(sbom.Digest, System.Text.Encoding.UTF8.GetString(referrers!), StringComparison.Ordinal);
            var tags = await CliAsync("--registry", target.Url, "tags", "team/tags");
            Assert.Equal(40, tags.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

            // Restoring into a registry that has it all already pushes nothing.
            var again = await CliAsync("--registry", target.Url, "restore", folder);
            Assert.True(again.Code == 0, again.Err);
            Assert.Contains(" 0 manifests, 0 blobs, 0 bytes", again.Out, StringComparison.Ordinal);
        }
        finally
        {
            await stopWriter.CancelAsync();
            await writer.ContinueWith(_ => { }, TaskScheduler.Default);
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Restore_refuses_a_backup_whose_blob_was_altered_naming_the_file()
    {
        await using var source = await Registry.StartAsync();
        var image = await source.PushImageAsync("team/app", "v1", [Random(50_000)], Ct);
        var folder = Path.Combine(Path.GetTempPath(), "wharf-backup-" + Guid.NewGuid().ToString("N"));
        try
        {
            Assert.Equal(0, (await CliAsync("--registry", source.Url, "backup", folder)).Code);
            var layer = JsonNode.Parse(image.Body)!["layers"]![0]!["digest"]!.GetValue<string>();
            var path = Path.Combine(folder, "repositories", "team", "app", "blobs", "sha256", layer[7..]);
            var bytes = await File.ReadAllBytesAsync(path, Ct);
            bytes[100] ^= 0xff;
            await File.WriteAllBytesAsync(path, bytes, Ct);

            await using var target = await Registry.StartAsync();
            var restore = await CliAsync("--registry", target.Url, "restore", folder);
            Assert.Equal(1, restore.Code);
            Assert.Single(restore.Err.Trim().Split('\n'));
            Assert.Contains(layer[7..], restore.Err, StringComparison.Ordinal);
            Assert.Null(await target.GetAsync($"v2/team/app/blobs/{layer}", Ct));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Repos_tags_rm_and_status_show_what_a_client_pushed()
    {
        await using var registry = await Registry.StartAsync();
        var image = await registry.PushImageAsync("team/app", "v1", [Random(1_000)], Ct);
        await registry.PushManifestAsync("team/app", "v2", JsonNode.Parse(image.Body)!.AsObject(), Registry.OciManifest, Ct);
        await registry.PushImageAsync("lib/base", "1.0", [Random(1_000)], Ct);

        Assert.Equal(["lib/base", "team/app"], Lines((await CliAsync("--registry", registry.Url, "repos")).Out));
        Assert.Equal(["v1", "v2"], Lines((await CliAsync("--registry", registry.Url, "tags", "team/app")).Out));

        var rm = await CliAsync("--registry", registry.Url, "rm", "team/app:v1");
        Assert.True(rm.Code == 0, rm.Err);
        Assert.Equal(["v2"], Lines((await CliAsync("--registry", registry.Url, "tags", "team/app")).Out));
        Assert.NotNull(await registry.GetAsync($"v2/team/app/manifests/{image.Digest}", Ct, Registry.OciManifest));

        var status = await CliAsync("--registry", registry.Url, "status");
        Assert.True(status.Code == 0, status.Err);
        Assert.Contains("placement view", status.Out, StringComparison.Ordinal);
        Assert.Contains("Active", status.Out, StringComparison.Ordinal);
        var json = await CliAsync("--registry", registry.Url, "status", "--json");
        using var doc = JsonDocument.Parse(json.Out);
        Assert.Single(doc.RootElement.GetProperty("view").GetProperty("nodes").EnumerateArray());

        // Errors: one line, non-zero exit.
        var missing = await CliAsync("--registry", registry.Url, "rm", "team/app:nope");
        Assert.Equal(1, missing.Code);
        Assert.Single(missing.Err.Trim().Split('\n'));
        Assert.Contains("MANIFEST_UNKNOWN", missing.Err, StringComparison.Ordinal);
        var unreachable = await CliAsync("--registry", $"http://127.0.0.1:{DockerfileTests.FreePort()}", "repos");
        Assert.Equal(1, unreachable.Code);
        Assert.StartsWith("wharf: cannot reach", unreachable.Err, StringComparison.Ordinal);
        var noTag = await CliAsync("--registry", registry.Url, "rm", "team/app");
        Assert.Equal(1, noTag.Code);
        Assert.Equal(2, (await CliAsync("--registry", registry.Url, "no-such-command")).Code);
    }

    private static List<string> Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    /// <summary>Reads an image back from the source as a client would: the manifest by reference and everything below it.</summary>
    private static async Task<Pushed> CaptureAsync(Registry registry, string repo, string reference)
    {
        var body = await registry.GetAsync($"v2/{repo}/manifests/{reference}", Ct, RegistryApi.ManifestMediaTypes) ?? throw new InvalidOperationException($"{repo}:{reference} not found");
        var content = new Dictionary<string, byte[]>();
        await CollectAsync(registry, repo, body, content);
        return new Pushed(repo, reference, Registry.Sha256(body), body, content);
    }

    private static async Task CollectAsync(Registry registry, string repo, byte[] manifest, Dictionary<string, byte[]> content)
    {
        using var doc = JsonDocument.Parse(manifest);
        if (doc.RootElement.TryGetProperty("manifests", out var children))
        {
            foreach (var child in children.EnumerateArray())
            {
                var digest = child.GetProperty("digest").GetString()!;
                var bytes = (await registry.GetAsync($"v2/{repo}/manifests/{digest}", Ct, RegistryApi.ManifestMediaTypes))!;
                content[digest] = bytes;
                await CollectAsync(registry, repo, bytes, content);
            }
        }
        foreach (var (digest, _) in BackupWriter.BlobsOf(doc.RootElement))
        {
            content[digest] = (await registry.GetAsync($"v2/{repo}/blobs/{digest}", Ct))!;
        }
    }

    private static async Task AssertSameAsync(Registry target, Pushed image)
    {
        var body = await target.GetAsync($"v2/{image.Repo}/manifests/{image.Reference}", Ct, RegistryApi.ManifestMediaTypes);
        Assert.True(body is not null, $"{image.Repo}:{image.Reference} is missing after restore");
        Assert.True(image.Body.AsSpan().SequenceEqual(body), $"{image.Repo}:{image.Reference} differs after restore");
        foreach (var (digest, expected) in image.Content)
        {
            var isManifest = await target.GetAsync($"v2/{image.Repo}/manifests/{digest}", Ct, RegistryApi.ManifestMediaTypes);
            var actual = isManifest ?? await target.GetAsync($"v2/{image.Repo}/blobs/{digest}", Ct);
            Assert.True(actual is not null && expected.AsSpan().SequenceEqual(actual), $"{image.Repo}@{digest} is missing or differs after restore");
        }
    }
}
