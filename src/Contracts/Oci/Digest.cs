using System.Diagnostics.CodeAnalysis;

namespace Wharf.Contracts.Oci;

/// <summary>
/// A content digest <c>algorithm:encoded</c> (OCI image-spec, descriptor.md "Digests").
/// Only the registered algorithms sha256 and sha512 are accepted, with lower-case hex of the exact length.
/// </summary>
[GenerateSerializer, Immutable, Alias("wharf.digest.v1")]
public readonly record struct Digest([property: Id(0)] string Algorithm, [property: Id(1)] string Hex)
{
    public const string Sha256 = "sha256";
    public const string Sha512 = "sha512";

    public override string ToString() => Algorithm + ":" + Hex;

    public static int HexLength(string algorithm) => algorithm switch
    {
        Sha256 => 64,
        Sha512 => 128,
        _ => -1,
    };

    public static bool IsSupportedAlgorithm(string algorithm) => HexLength(algorithm) > 0;

    public static bool TryParse(string? text, [NotNullWhen(true)] out Digest? digest)
    {
        digest = null;
        if (string.IsNullOrEmpty(text) || text.Length > 256)
        {
            return false;
        }
        var colon = text.IndexOf(':');
        if (colon <= 0)
        {
            return false;
        }
        var algorithm = text[..colon];
        var hex = text[(colon + 1)..];
        if (HexLength(algorithm) != hex.Length)
        {
            return false;
        }
        foreach (var c in hex)
        {
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            {
                return false;
            }
        }
        digest = new Digest(algorithm, hex);
        return true;
    }

    /// <summary>Whether the text has the general digest grammar, even with an algorithm we do not support.</summary>
    public static bool LooksLikeDigest(string text) => text.Contains(':');

    public static Digest Parse(string text) =>
        TryParse(text, out var d) ? d.Value : throw new FormatException($"invalid digest '{text}'");

    public static Digest Compute(string algorithm, ReadOnlySpan<byte> content) => algorithm switch
    {
        Sha256 => new Digest(Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content))),
        Sha512 => new Digest(Sha512, Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(content))),
        _ => throw new ArgumentException($"unsupported algorithm {algorithm}", nameof(algorithm)),
    };
}
