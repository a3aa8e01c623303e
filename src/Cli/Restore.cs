using System.Collections.Concurrent;
using System.Text.Json;

namespace Wharf.Cli;

/// <summary>
/// Pushes a backup into a Wharf (empty or not): blobs before the manifests that name them, an index's children
/// before the index, subjects before their referrers, and each tag after its manifest. What the registry already
/// has is skipped (HEAD first). Every blob and manifest is re-hashed from the backup before it is sent, and the
/// registry verifies it again. Tagged images go <see cref="Parallelism"/> at a time; a blob or manifest that several
/// of them share is pushed once and the others wait for it.
/// </summary>
public sealed class Restorer(RegistryApi api, string folder, Action<string>? log = null)
{
    public const int Parallelism = 4;

    private readonly SemaphoreSlim _slots = new(Parallelism);
    private int _manifests;
    private int _blobs;
    private int _skipped;
    private long _bytes;

    public async Task<TransferSummary> RunAsync(CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        if (!File.Exists(Path.Combine(folder, OciLayout.BackupFile)))
        {
            throw new CliException($"{folder} is not a Wharf backup: {OciLayout.BackupFile} is missing");
        }
        var repos = 0;
        var tags = 0;
        foreach (var (repo, layout) in OciLayout.Repositories(folder))
        {
            repos++;
            var once = new ConcurrentDictionary<string, Lazy<Task>>(StringComparer.Ordinal);
            using var index = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(layout, "index.json"), ct));
            var entries = index.RootElement.GetProperty("manifests").EnumerateArray()
                .Select(e => (
                    Digest: e.GetProperty("digest").GetString()!,
                    MediaType: e.GetProperty("mediaType").GetString()!,
                    Tag: e.TryGetProperty("annotations", out var a) && a.TryGetProperty(OciLayout.RefName, out var t) ? t.GetString() : null))
                .ToList();
            // Tagged images first (in parallel), then referrers, whose subjects they are.
            foreach (var group in new[] { entries.Where(e => e.Tag is not null), entries.Where(e => e.Tag is null) })
            {
                await Task.WhenAll(group.Select(async e =>
                {
                    await PushManifestTreeAsync(repo, layout, e.Digest, e.MediaType, once, ct);
                    if (e.Tag is not null)
                    {
                        await PushTagAsync(repo, layout, e.Tag, e.Digest, e.MediaType, ct);
                    }
                }));
            }
            var repoTags = entries.Count(e => e.Tag is not null);
            tags += repoTags;
            log?.Invoke($"{repo}: {repoTags} tags");
        }
        return new TransferSummary(repos, tags, _manifests, _blobs, _bytes, _skipped, clock.Elapsed);
    }

    private async Task PushTagAsync(string repo, string layout, string tag, string digest, string mediaType, CancellationToken ct)
    {
        if (await api.ManifestDigestAsync(repo, tag, ct) == digest)
        {
            Interlocked.Increment(ref _skipped);
            return;
        }
        await api.PushManifestAsync(repo, tag, mediaType, await ReadVerifiedAsync(layout, digest, ct), ct);
    }

    private Task PushManifestTreeAsync(string repo, string layout, string digest, string mediaType, ConcurrentDictionary<string, Lazy<Task>> once, CancellationToken ct) =>
        once.GetOrAdd(digest, _ => new Lazy<Task>(() => PushManifestTreeOnceAsync(repo, layout, digest, mediaType, once, ct))).Value;

    private async Task PushManifestTreeOnceAsync(string repo, string layout, string digest, string mediaType, ConcurrentDictionary<string, Lazy<Task>> once, CancellationToken ct)
    {
        var body = await ReadVerifiedAsync(layout, digest, ct);
        if (await api.ManifestDigestAsync(repo, digest, ct) is not null)
        {
            Interlocked.Increment(ref _skipped);
            return;
        }
        using var doc = JsonDocument.Parse(body);
        var dependencies = new List<Task>();
        if (doc.RootElement.TryGetProperty("manifests", out var children))
        {
            foreach (var child in children.EnumerateArray())
            {
                var childType = child.TryGetProperty("mediaType", out var mt) ? mt.GetString()! : RegistryApi.ManifestMediaTypes[1];
                dependencies.Add(PushManifestTreeAsync(repo, layout, child.GetProperty("digest").GetString()!, childType, once, ct));
            }
        }
        foreach (var (blob, size) in BackupWriter.BlobsOf(doc.RootElement))
        {
            dependencies.Add(once.GetOrAdd(blob, _ => new Lazy<Task>(() => PushBlobOnceAsync(repo, layout, digest, blob, size, ct))).Value);
        }
        await Task.WhenAll(dependencies);
        await api.PushManifestAsync(repo, digest, mediaType, body, ct);
        Interlocked.Increment(ref _manifests);
    }

    private async Task PushBlobOnceAsync(string repo, string layout, string manifest, string blob, long size, CancellationToken ct)
    {
        await _slots.WaitAsync(ct);
        try
        {
            var path = OciLayout.BlobPath(layout, blob);
            if (!File.Exists(path))
            {
                throw new CliException($"the backup of {repo} is incomplete: {blob} (named by {manifest}) is missing");
            }
            if (await OciLayout.DigestOfFileAsync(path, ct) != blob || new FileInfo(path).Length != size)
            {
                throw new CliException($"the backup of {repo} is corrupt: {path} does not hash to {blob} with {size} bytes");
            }
            if (await api.BlobExistsAsync(repo, blob, ct))
            {
                Interlocked.Increment(ref _skipped);
                return;
            }
            await api.PushBlobAsync(repo, blob, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous), ct);
            Interlocked.Increment(ref _blobs);
            Interlocked.Add(ref _bytes, size);
        }
        finally
        {
            _slots.Release();
        }
    }

    private static async Task<byte[]> ReadVerifiedAsync(string layout, string digest, CancellationToken ct)
    {
        var path = OciLayout.BlobPath(layout, digest);
        if (!File.Exists(path))
        {
            throw new CliException($"the backup is incomplete: manifest {digest} is missing from {layout}");
        }
        var body = await File.ReadAllBytesAsync(path, ct);
        if ("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body)) != digest)
        {
            throw new CliException($"the backup is corrupt: {path} does not hash to {digest}");
        }
        return body;
    }
}
