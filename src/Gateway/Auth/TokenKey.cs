using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Wharf.Gateway.Auth;

/// <summary>
/// A key that signs or verifies tokens: EC P-256 (ES256) or RSA (RS256). Its id (<c>kid</c>) is derived from the
/// public key, so every gateway that holds the same PEM file names it the same way.
/// </summary>
public sealed class TokenKey
{
    public const string ES256 = "ES256";
    public const string RS256 = "RS256";

    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;

    private TokenKey(ECDsa? ec, RSA? rsa, bool canSign, string? id)
    {
        _ec = ec;
        _rsa = rsa;
        CanSign = canSign;
        Algorithm = ec is not null ? ES256 : RS256;
        var spki = ec is not null ? ec.ExportSubjectPublicKeyInfo() : rsa!.ExportSubjectPublicKeyInfo();
        Id = id ?? Base64Url.EncodeToString(SHA256.HashData(spki).AsSpan(0, 15));
    }

    public string Id { get; }

    public string Algorithm { get; }

    public bool CanSign { get; }

    public static TokenKey From(ECDsa ec, bool canSign, string? id = null)
    {
        if (ec.KeySize != 256)
        {
            throw new CryptographicException($"an EC token key must be P-256 (ES256), not {ec.KeySize} bits");
        }
        return new TokenKey(ec, null, canSign, id);
    }

    public static TokenKey From(RSA rsa, bool canSign, string? id = null)
    {
        if (rsa.KeySize < 2048)
        {
            throw new CryptographicException($"an RSA token key needs at least 2048 bits, not {rsa.KeySize}");
        }
        return new TokenKey(null, rsa, canSign, id);
    }

    /// <summary>A new P-256 key.</summary>
    public static TokenKey Generate() => From(ECDsa.Create(ECCurve.NamedCurves.nistP256), canSign: true);

    public string ExportPrivatePem() => _ec is not null ? _ec.ExportPkcs8PrivateKeyPem() : _rsa!.ExportPkcs8PrivateKeyPem();

    public string ExportPublicPem() => _ec is not null ? _ec.ExportSubjectPublicKeyInfoPem() : _rsa!.ExportSubjectPublicKeyInfoPem();

    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        if (!CanSign)
        {
            throw new InvalidOperationException($"key {Id} holds no private key");
        }
        // JWS (RFC 7518 §3.4) wants ECDSA signatures as r‖s, which is .NET's default (IEEE P1363) format.
        return _ec is not null ? _ec.SignData(data, HashAlgorithmName.SHA256) : _rsa!.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            return _ec is not null
                ? signature.Length == 64 && _ec.VerifyData(data, signature, HashAlgorithmName.SHA256)
                : _rsa!.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>Every key in a PEM text: private keys (PKCS#8, SEC1, PKCS#1), public keys and certificates.</summary>
    public static List<TokenKey> ReadPem(string pem)
    {
        var keys = new List<TokenKey>();
        var rest = pem.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            var block = rest[fields.Location].ToString();
            rest = rest[fields.Location.End.Value..];
            if (label == "CERTIFICATE")
            {
                using var cert = X509Certificate2.CreateFromPem(block);
                if (cert.GetECDsaPublicKey() is { } ecCert)
                {
                    keys.Add(From(ecCert, canSign: false));
                }
                else if (cert.GetRSAPublicKey() is { } rsaCert)
                {
                    keys.Add(From(rsaCert, canSign: false));
                }
            }
            else if (label is "PRIVATE KEY" or "EC PRIVATE KEY" or "RSA PRIVATE KEY" or "PUBLIC KEY" or "RSA PUBLIC KEY")
            {
                var canSign = label.Contains("PRIVATE", StringComparison.Ordinal);
                // PKCS#8 and SubjectPublicKeyInfo say their algorithm inside: try EC, then RSA.
                if (label is not ("RSA PRIVATE KEY" or "RSA PUBLIC KEY") && TryEc(block) is { } ec)
                {
                    keys.Add(From(ec, canSign));
                }
                else
                {
                    var rsa = RSA.Create();
                    rsa.ImportFromPem(block);
                    keys.Add(From(rsa, canSign));
                }
            }
        }
        return keys;
    }

    /// <summary>The keys of a JWKS document (RFC 7517): EC P-256 and RSA keys with <c>use</c> absent or <c>sig</c>.</summary>
    public static List<TokenKey> ReadJwks(string json)
    {
        var keys = new List<TokenKey>();
        using var doc = JsonDocument.Parse(json);
        foreach (var k in doc.RootElement.GetProperty("keys").EnumerateArray())
        {
            var kid = k.TryGetProperty("kid", out var kidValue) ? kidValue.GetString() : null;
            if (k.TryGetProperty("use", out var use) && use.GetString() != "sig")
            {
                continue;
            }
            switch (k.GetProperty("kty").GetString())
            {
                case "EC" when k.GetProperty("crv").GetString() == "P-256":
                    keys.Add(From(ECDsa.Create(new ECParameters
                    {
                        Curve = ECCurve.NamedCurves.nistP256,
                        Q = new ECPoint { X = Base64Url.DecodeFromChars(k.GetProperty("x").GetString()), Y = Base64Url.DecodeFromChars(k.GetProperty("y").GetString()) },
                    }), canSign: false, kid));
                    break;
                case "RSA":
                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters
                    {
                        Modulus = Base64Url.DecodeFromChars(k.GetProperty("n").GetString()),
                        Exponent = Base64Url.DecodeFromChars(k.GetProperty("e").GetString()),
                    });
                    keys.Add(From(rsa, canSign: false, kid));
                    break;
            }
        }
        return keys;
    }

    private static ECDsa? TryEc(string block)
    {
        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(block);
            return ec;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            ec.Dispose();
            return null;
        }
    }
}
