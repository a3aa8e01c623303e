using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Placement;

/// <summary>
/// Every key hashes to one of 65,536 fixed shards (DESIGN principle 3): a blob by its digest, an upload by its id,
/// every record of a repository by the repository's name, so one repository's records live together.
/// </summary>
public static class Shards
{
    public const int Count = 65536;

    /// <summary>A digest is already uniform: its first 16 bits are the shard.</summary>
    public static int OfDigest(Digest digest) => Convert.ToInt32(digest.Hex[..4], 16);

    public static int OfRepository(string name) => OfText("repo\0" + name);

    public static int OfUpload(string uploadId) => OfText("upload\0" + uploadId);

    /// <summary>The access state (users, robots, teams, policies): one log, one shard.</summary>
    public static int OfAccess() => OfText("access\0");

    public static int OfCatalogShard(long catalogShard) => OfText("catalog\0" + catalogShard.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>An hour of the audit log (<c>yyyyMMddHH</c>).</summary>
    public static int OfAuditHour(string hour) => OfText("audit\0" + hour);

    private static int OfText(string text)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(text), hash);
        return BinaryPrimitives.ReadUInt16BigEndian(hash);
    }
}
