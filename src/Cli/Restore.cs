using System.Text.Json;

namespace Wharf.Cli;

/// <summary>
/// Pushes a backup into a Wharf (empty or not): blobs before the manifests that name them, an index's children
/// before the index, a subject before its referrers, and tags last. What the registry already has is skipped (HEAD
/// first). Every blob and manifest is re-hashed from the backup before it is sent, and the registry verifies it again.
/// </summary>
public sealed class Restorer(RegistryApi api, string folder, Action<string>? log = null)
{
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
            var pushed = new HashSet<string>(StringComparer.Ordinal);
            using var index = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(layout, "index.json"), ct));
            var repoTags = 0;
            foreach (var entry in index.RootElement.GetProperty("manifests").EnumerateArray())
            {
                var digest = entry.GetProperty("digest").GetString()!;
                var mediaType = entry.GetProperty("mediaType").GetString()!;
                await PushManifestTreeAsync(repo, layout, digest, mediaType, pushed, ct);
                if (entry.TryGetProperty("annotations", out var a) && a.TryGetProperty(OciLayout.RefName, out var tagName))
                {
                    var tag = tagName.GetString()!;
                    if (await api.ManifestDigestAsync(repo, tag, ct) == digest)
                    {
                        _skipped++;
                    }
                    else
                    {
                        await api.PushManifestAsync(repo, tag, mediaType, await ReadVerifiedAsync(layout, digest, ct), ct);
                    }
                    repoTags++;
                }
            }
            tags += repoTags;
            log?.Invoke($"{repo}: {repoTags} tags");
        }
        return new TransferSummary(repos, tags, _manifests, _blobs, _bytes, _skipped, clock.Elapsed);
    }

    private async Task PushManifestTreeAsync(string repo, string layout, string digest, string mediaType, HashSet<string> pushed, CancellationToken ct)
    {
        if (!pushed.Add(digest))
        {
            return;
        }
        var body = await ReadVerifiedAsync(layout, digest, ct);
        if (await api.ManifestDigestAsync(repo, digest, ct) is not null)
        {
            _skipped++;
            return;
        }
        using var doc = JsonDocument.Parse(body);
        if (doc.RootElement.TryGetProperty("manifests", out var children))
        {
            foreach (var child in children.EnumerateArray())
            {
                var childType = child.TryGetProperty("mediaType", out var mt) ? mt.GetString()! : RegistryApi.ManifestMediaTypes[1];
                await PushManifestTreeAsync(repo, layout, child.GetProperty("digest").GetString()!, childType, pushed, ct);
            }
        }
        foreach (var (blob, size) in BackupWriter.BlobsOf(doc.RootElement))
        {
            if (!pushed.Add(blob))
            {
                continue;
            }
            var path = OciLayout.BlobPath(layout, blob);
            if (!File.Exists(path))
            {
                throw new CliException($"the backup of {repo} is incomplete: {blob} (named by {digest}) is missing");
            }
            if (await OciLayout.DigestOfFileAsync(path, ct) != blob || new FileInfo(path).Length != size)
            {
                throw new CliException($"the backup of {repo} is corrupt: {path} does not hash to {blob} with {size} bytes");
            }
            if (await api.BlobExistsAsync(repo, blob, ct))
            {
                _skipped++;
                continue;
            }
            await api.PushBlobAsync(repo, blob, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous), ct);
            _blobs++;
            _bytes += size;
        }
        await api.PushManifestAsync(repo, digest, mediaType, body, ct);
        _manifests++;
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
