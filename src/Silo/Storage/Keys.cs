using Wharf.Contracts.Oci;

namespace Wharf.Silo.Storage;

/// <summary>
/// The key layout of the record store. A repository's records share the prefix <c>r/{name}\0</c>, so they sort
/// together and live on one shard; the separator \0 sorts below every character a name may contain.
/// </summary>
public static class Keys
{
    public const int CatalogShards = 16;

    public static string RepositoryPrefix(string repo) => $"r/{repo}\0";

    public static string RepositoryHeader(string repo) => $"r/{repo}\0h";

    public static string TagPrefix(string repo) => $"r/{repo}\0t\0";

    public static string Tag(string repo, string tag) => TagPrefix(repo) + tag;

    public static string ManifestPrefix(string repo) => $"r/{repo}\0m\0";

    public static string Manifest(string repo, Digest digest) => ManifestPrefix(repo) + digest;

    /// <summary>Tags of a manifest, so deleting it by digest finds them without scanning every tag.</summary>
    public static string ManifestTag(string repo, Digest digest, string tag) => $"r/{repo}\0mt\0{digest}\0{tag}";

    public static string ManifestTagPrefix(string repo, Digest digest) => $"r/{repo}\0mt\0{digest}\0";

    public static string BlobLink(string repo, Digest digest) => $"r/{repo}\0b\0{digest}";

    public static string ReferrerPrefix(string repo, Digest subject) => $"r/{repo}\0f\0{subject}\0";

    public static string Referrer(string repo, Digest subject, Digest referrer) => ReferrerPrefix(repo, subject) + referrer;

    /// <summary>Every repository linking a blob or manifest: what a garbage collector reads to find the unreferenced.</summary>
    public static string BlobBackReference(Digest digest, string repo) => $"br/{digest}\0{repo}";

    public static string BlobIndex(Digest digest) => $"bl/{digest}";

    public static string BlobInline(Digest digest) => $"bd/{digest}";

    public static string Upload(string uploadId) => $"u/{uploadId}";

    /// <summary>The access state's records (users, robots, teams, policies, deleted users) and its version.</summary>
    public const string AccessVersion = "a/v";

    public const string AccessUserPrefix = "a/u/";

    public const string AccessRobotPrefix = "a/r/";

    public const string AccessTeamPrefix = "a/t/";

    public const string AccessPolicyPrefix = "a/p/";

    public const string AccessDeletedUserPrefix = "a/x/";

    /// <summary>FNV-1a of the name: stable across processes and versions (string.GetHashCode is not).</summary>
    public static int CatalogShard(string repo)
    {
        var h = 2166136261u;
        foreach (var c in repo)
        {
            h = (h ^ c) * 16777619u;
        }
        return (int)(h % CatalogShards);
    }

    public static string CatalogPrefix(int shard) => $"c/{shard:x2}/";

    public static string Catalog(string repo) => CatalogPrefix(CatalogShard(repo)) + repo;
}
