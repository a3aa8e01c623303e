using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wharf.Cli;

/// <summary>
/// The backup format: a folder with <c>wharf-backup.json</c> (what was backed up, when, from where) and one OCI image
/// layout per repository under <c>repositories/&lt;name&gt;/</c> (<c>oci-layout</c>, <c>index.json</c>,
/// <c>blobs/sha256/&lt;hex&gt;</c>). Each repository's layout stands alone, so a person can inspect or copy one with
/// the usual tools (<c>skopeo copy oci:backup/repositories/team/app:1.0 ...</c>) without Wharf; a blob shared by
/// several repositories is downloaded once and copied locally into each layout.
/// </summary>
public static class OciLayout
{
    public const string BackupFile = "wharf-backup.json";
    public const string RepositoriesFolder = "repositories";
    public const string RefName = "org.opencontainers.image.ref.name";

    /// <summary>Marks an index.json entry that is in the layout because it refers to another manifest (a referrer).</summary>
    public const string ReferrerAnnotation = "io.wharf.referrer";

    public static string BlobPath(string layout, string digest)
    {
        var parts = digest.Split(':', 2);
        if (parts.Length != 2 || parts[0] != "sha256" || parts[1].Length != 64 || !parts[1].All(Uri.IsHexDigit))
        {
            throw new CliException($"unsupported or malformed digest '{digest}'");
        }
        return Path.Combine(layout, "blobs", "sha256", parts[1]);
    }

    public static void Create(string layout)
    {
        Directory.CreateDirectory(Path.Combine(layout, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(layout, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
    }

    public static void WriteIndex(string layout, IEnumerable<JsonObject> manifests)
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(manifests.Select(m => (JsonNode)m).ToArray()),
        };
        WriteAtomically(Path.Combine(layout, "index.json"), JsonSerializer.SerializeToUtf8Bytes(index, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>SHA-256 of a file, as a digest string.</summary>
    public static async Task<string> DigestOfFileAsync(string path, CancellationToken ct)
    {
        await using var file = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
    }

    public static void WriteAtomically(string path, byte[] bytes)
    {
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The repository folders of a backup (each holds an <c>oci-layout</c> file), as (name, folder).</summary>
    public static IEnumerable<(string Name, string Folder)> Repositories(string backup)
    {
        var root = Path.Combine(backup, RepositoriesFolder);
        if (!Directory.Exists(root))
        {
            throw new CliException($"{backup} is not a Wharf backup: it has no {RepositoriesFolder}/ folder");
        }
        return Directory.EnumerateFiles(root, "oci-layout", SearchOption.AllDirectories)
            .Select(f => Path.GetDirectoryName(f)!)
            .Select(d => (Path.GetRelativePath(root, d).Replace(Path.DirectorySeparatorChar, '/'), d))
            .OrderBy(r => r.Item1, StringComparer.Ordinal);
    }
}
