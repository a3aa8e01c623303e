using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wharf.Cli;

public sealed record TransferSummary(int Repositories, int Tags, int Manifests, int Blobs, long Bytes, int Skipped, TimeSpan Elapsed)
{
    public double MegabytesPerSecond => Bytes / 1e6 / Math.Max(Elapsed.TotalSeconds, 1e-6);
}

/// <summary>
/// Backs up every repository through the /v2/ API while the registry keeps serving: each tag is resolved once to a
/// digest and everything below it is fetched by digest, so an image that moves during the backup is either the old
/// or the new one whole. Everything reachable is saved: tagged manifests, the children of indexes, config and layer
/// blobs, and referrers (recursively). Every byte is verified against its digest before it is kept. Manifests are
/// walked in order; blobs download <see cref="Parallelism"/> at a time, each digest once per backup.
/// </summary>
public sealed class BackupWriter(RegistryApi api, string folder, Action<string>? log = null)
{
    public const int Parallelism = 4;

    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _downloaded = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _slots = new(Parallelism);
    private readonly List<Task> _pending = [];
    private readonly HashSet<string> _scheduled = new(StringComparer.Ordinal);
    private int _manifests;
    private int _blobs;
    private long _bytes;

    public async Task<TransferSummary> RunAsync(CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Directory.CreateDirectory(folder);
        if (Directory.Exists(Path.Combine(folder, OciLayout.RepositoriesFolder)) && Directory.EnumerateFileSystemEntries(Path.Combine(folder, OciLayout.RepositoriesFolder)).Any())
        {
            throw new CliException($"{folder} already holds a backup: choose an empty folder");
        }
        var repos = await api.CatalogAsync(ct);
        var summaries = new JsonArray();
        var tagCount = 0;
        foreach (var repo in repos)
        {
            var (tags, manifests) = await BackupRepositoryAsync(repo, ct);
            tagCount += tags;
            summaries.Add(new JsonObject { ["name"] = repo, ["tags"] = tags, ["manifests"] = manifests });
            log?.Invoke($"{repo}: {tags} tags, {manifests} manifests");
        }
        var summary = new TransferSummary(repos.Count, tagCount, _manifests, _blobs, _bytes, 0, clock.Elapsed);
        var info = new JsonObject
        {
            ["format"] = "wharf-backup",
            ["version"] = 1,
            ["source"] = api.BaseAddress.ToString(),
            ["started"] = started.ToString("O"),
            ["finished"] = DateTimeOffset.UtcNow.ToString("O"),
            ["bytes"] = _bytes,
            ["repositories"] = summaries,
        };
        OciLayout.WriteAtomically(Path.Combine(folder, OciLayout.BackupFile), JsonSerializer.SerializeToUtf8Bytes(info, new JsonSerializerOptions { WriteIndented = true }));
        return summary;
    }

    private async Task<(int Tags, int Manifests)> BackupRepositoryAsync(string repo, CancellationToken ct)
    {
        var layout = Path.Combine(folder, OciLayout.RepositoriesFolder, repo.Replace('/', Path.DirectorySeparatorChar));
        OciLayout.Create(layout);
        var entries = new List<JsonObject>();
        var saved = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>();
        var tags = 0;
        foreach (var tag in await api.TagsAsync(repo, ct))
        {
            var manifest = await api.GetManifestAsync(repo, tag, ct);
            if (manifest is null)
            {
                continue; // deleted since the tag list was read
            }
            await SaveManifestTreeAsync(repo, layout, manifest, saved, queue, ct);
            entries.Add(Descriptor(manifest, new JsonObject { [OciLayout.RefName] = tag }));
            tags++;
        }
        // Referrers of everything saved, and their referrers in turn.
        var listed = new HashSet<string>(entries.Select(e => (string)e["digest"]!), StringComparer.Ordinal);
        while (queue.TryDequeue(out var subject))
        {
            foreach (var referrer in await api.ReferrersAsync(repo, subject, ct))
            {
                var digest = referrer.GetProperty("digest").GetString()!;
                if (!listed.Add(digest))
                {
                    continue;
                }
                var manifest = await api.GetManifestAsync(repo, digest, ct);
                if (manifest is null)
                {
                    continue;
                }
                await SaveManifestTreeAsync(repo, layout, manifest, saved, queue, ct);
                entries.Add(Descriptor(manifest, new JsonObject { [OciLayout.ReferrerAnnotation] = subject }));
            }
        }
        await Task.WhenAll(_pending);
        _pending.Clear();
        OciLayout.WriteIndex(layout, entries);
        return (tags, saved.Count);
    }

    private async Task SaveManifestTreeAsync(string repo, string layout, FetchedManifest manifest, HashSet<string> saved, Queue<string> referrersOf, CancellationToken ct)
    {
        if (!saved.Add(manifest.Digest))
        {
            return;
        }
        referrersOf.Enqueue(manifest.Digest);
        using var doc = JsonDocument.Parse(manifest.Body);
        var root = doc.RootElement;
        if (root.TryGetProperty("manifests", out var children))
        {
            foreach (var child in children.EnumerateArray())
            {
                var digest = child.GetProperty("digest").GetString()!;
                var fetched = await api.GetManifestAsync(repo, digest, ct)
                    ?? throw new CliException($"{repo}@{manifest.Digest} names {digest}, which the registry does not have");
                await SaveManifestTreeAsync(repo, layout, fetched, saved, referrersOf, ct);
            }
        }
        foreach (var blob in BlobsOf(root))
        {
            var blobPath = OciLayout.BlobPath(layout, blob.Digest);
            if (_scheduled.Add(blobPath))
            {
                _pending.Add(SaveBlobAsync(repo, blobPath, blob.Digest, blob.Size, ct));
            }
        }
        var path = OciLayout.BlobPath(layout, manifest.Digest);
        if (!File.Exists(path))
        {
            OciLayout.WriteAtomically(path, manifest.Body);
            Interlocked.Increment(ref _manifests);
        }
    }

    public static IEnumerable<(string Digest, long Size)> BlobsOf(JsonElement manifest)
    {
        if (manifest.TryGetProperty("config", out var config) && config.ValueKind == JsonValueKind.Object)
        {
            yield return (config.GetProperty("digest").GetString()!, config.GetProperty("size").GetInt64());
        }
        foreach (var name in new[] { "layers", "blobs" })
        {
            if (manifest.TryGetProperty(name, out var layers) && layers.ValueKind == JsonValueKind.Array)
            {
                foreach (var layer in layers.EnumerateArray())
                {
                    yield return (layer.GetProperty("digest").GetString()!, layer.GetProperty("size").GetInt64());
                }
            }
        }
    }

    /// <summary>Downloads a digest the first time any repository needs it; later layouts get a local copy.</summary>
    private async Task SaveBlobAsync(string repo, string path, string digest, long size, CancellationToken ct)
    {
        var first = _downloaded.GetOrAdd(digest, _ => new Lazy<Task<string>>(() => DownloadAsync(repo, path, digest, size, ct)));
        var downloaded = await first.Value;
        if (downloaded != path && !File.Exists(path))
        {
            File.Copy(downloaded, path + ".tmp", overwrite: true);
            File.Move(path + ".tmp", path, overwrite: true);
        }
    }

    private async Task<string> DownloadAsync(string repo, string path, string digest, long size, CancellationToken ct)
    {
        await _slots.WaitAsync(ct);
        try
        {
            var temp = path + ".tmp";
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
            {
                Interlocked.Add(ref _bytes, await api.DownloadBlobAsync(repo, digest, size, file, ct));
            }
            File.Move(temp, path, overwrite: true);
            Interlocked.Increment(ref _blobs);
            return path;
        }
        finally
        {
            _slots.Release();
        }
    }

    private static JsonObject Descriptor(FetchedManifest manifest, JsonObject annotations) => new()
    {
        ["mediaType"] = manifest.MediaType,
        ["digest"] = manifest.Digest,
        ["size"] = manifest.Body.Length,
        ["annotations"] = annotations,
    };
}
