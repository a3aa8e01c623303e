using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace Wharf.Gateway.Auth;

/// <summary>What a registry token says (Distribution docs/content/spec/auth/jwt.md): the registered claims and
/// the Docker <c>access</c> claim. A refresh token has no access and the refresh audience.</summary>
public sealed record TokenClaims(
    string Issuer, string Subject, IReadOnlyList<string> Audience, DateTimeOffset Expires, DateTimeOffset NotBefore,
    DateTimeOffset IssuedAt, string Id, IReadOnlyList<AccessScope> Access);

/// <summary>
/// Compact JWS (RFC 7515) with ES256 or RS256, written and read here in a few lines rather than through a library,
/// so that what is accepted is visible: the header's <c>alg</c> must be one a configured key has (never
/// <c>none</c>, never HMAC), the signature is checked before the payload is parsed, and every malformed input is a
/// plain refusal, never an exception.
/// </summary>
public static class JsonWebToken
{
    public const int MaxLength = 16 * 1024;

    public static string Create(TokenKey key, TokenClaims claims)
    {
        var header = JsonSerializer.SerializeToUtf8Bytes(new { typ = "JWT", alg = key.Algorithm, kid = key.Id });
        var payload = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(payload))
        {
            w.WriteStartObject();
            w.WriteString("iss", claims.Issuer);
            w.WriteString("sub", claims.Subject);
            if (claims.Audience.Count == 1)
            {
                w.WriteString("aud", claims.Audience[0]);
            }
            else
            {
                w.WriteStartArray("aud");
                claims.Audience.ToList().ForEach(w.WriteStringValue);
                w.WriteEndArray();
            }
            w.WriteNumber("exp", claims.Expires.ToUnixTimeSeconds());
            w.WriteNumber("nbf", claims.NotBefore.ToUnixTimeSeconds());
            w.WriteNumber("iat", claims.IssuedAt.ToUnixTimeSeconds());
            w.WriteString("jti", claims.Id);
            w.WriteStartArray("access");
            foreach (var a in claims.Access)
            {
                w.WriteStartObject();
                w.WriteString("type", a.Type);
                w.WriteString("name", a.Name);
                w.WriteStartArray("actions");
                foreach (var action in a.Actions)
                {
                    w.WriteStringValue(action);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        var signingInput = Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(payload.WrittenSpan);
        return signingInput + "." + Base64Url.EncodeToString(key.Sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    /// <summary>
    /// Checks the signature with a key of <paramref name="keys"/> (the one the header's <c>kid</c> names, else
    /// each whose algorithm matches) and parses the claims. Times, issuer and audience are the caller's to check.
    /// </summary>
    public static bool TryRead(string token, IReadOnlyList<TokenKey> keys, out TokenClaims claims, out string error)
    {
        claims = null!;
        error = "malformed token";
        if (token.Length is 0 or > MaxLength)
        {
            return false;
        }
        var dot1 = token.IndexOf('.');
        var dot2 = dot1 < 0 ? -1 : token.IndexOf('.', dot1 + 1);
        if (dot1 <= 0 || dot2 <= dot1 + 1 || dot2 == token.Length - 1 || token.IndexOf('.', dot2 + 1) >= 0)
        {
            return false;
        }
        if (!TryDecode(token.AsSpan(0, dot1), out var headerBytes) || !TryDecode(token.AsSpan(dot2 + 1), out var signature))
        {
            return false;
        }
        string? alg, kid;
        try
        {
            using var header = JsonDocument.Parse(headerBytes);
            if (header.RootElement.ValueKind != JsonValueKind.Object
                || !header.RootElement.TryGetProperty("alg", out var algValue) || algValue.ValueKind != JsonValueKind.String)
            {
                return false;
            }
            alg = algValue.GetString();
            kid = header.RootElement.TryGetProperty("kid", out var kidValue) && kidValue.ValueKind == JsonValueKind.String ? kidValue.GetString() : null;
            if (header.RootElement.TryGetProperty("crit", out _))
            {
                error = "unsupported critical header";
                return false;
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
        if (alg is not (TokenKey.ES256 or TokenKey.RS256))
        {
            error = $"algorithm '{alg}' is not accepted";
            return false;
        }
        var signingInput = Encoding.ASCII.GetBytes(token, 0, dot2);
        // The kid is a hint: the key it names is tried first; an issuer whose kids differ from ours (a certificate
        // bundle carries none) is still verified against every trusted key of the algorithm. Trust comes from the
        // signature, never from the header.
        var verified = VerifyWithAny(keys, alg, kid, signingInput, signature);
        if (!verified)
        {
            error = "bad signature or unknown key";
            return false;
        }
        if (!TryDecode(token.AsSpan(dot1 + 1, dot2 - dot1 - 1), out var payload) || !TryParseClaims(payload, out claims))
        {
            error = "malformed claims";
            return false;
        }
        error = "";
        return true;
    }

    private static bool VerifyWithAny(IReadOnlyList<TokenKey> keys, string alg, string? kid, byte[] signingInput, byte[] signature)
    {
        foreach (var key in keys)
        {
            if (kid is not null && key.Id == kid && key.Algorithm == alg && key.Verify(signingInput, signature))
            {
                return true;
            }
        }
        foreach (var key in keys)
        {
            if (key.Id != kid && key.Algorithm == alg && key.Verify(signingInput, signature))
            {
                return true;
            }
        }
        return false;
    }

    public static bool TryParseClaims(byte[] payload, out TokenClaims claims)
    {
        claims = null!;
        try
        {
            using var doc = JsonDocument.Parse(payload);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !TryTime(root, "exp", out var exp))
            {
                return false;
            }
            var nbf = TryTime(root, "nbf", out var n) ? n : DateTimeOffset.MinValue;
            var iat = TryTime(root, "iat", out var i) ? i : DateTimeOffset.MinValue;
            var audience = new List<string>();
            if (root.TryGetProperty("aud", out var aud))
            {
                if (aud.ValueKind == JsonValueKind.String)
                {
                    audience.Add(aud.GetString()!);
                }
                else if (aud.ValueKind == JsonValueKind.Array)
                {
                    foreach (var a in aud.EnumerateArray())
                    {
                        if (a.ValueKind != JsonValueKind.String)
                        {
                            return false;
                        }
                        audience.Add(a.GetString()!);
                    }
                }
                else
                {
                    return false;
                }
            }
            var access = new List<AccessScope>();
            if (root.TryGetProperty("access", out var accessValue) && accessValue.ValueKind != JsonValueKind.Null)
            {
                if (accessValue.ValueKind != JsonValueKind.Array)
                {
                    return false;
                }
                foreach (var entry in accessValue.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object || String(entry, "type") is not { } type || String(entry, "name") is not { } name
                        || !entry.TryGetProperty("actions", out var actions) || actions.ValueKind != JsonValueKind.Array)
                    {
                        return false;
                    }
                    var list = new List<string>();
                    foreach (var action in actions.EnumerateArray())
                    {
                        if (action.ValueKind != JsonValueKind.String)
                        {
                            return false;
                        }
                        list.Add(action.GetString()!);
                    }
                    access.Add(new AccessScope(type, name, list));
                }
            }
            claims = new TokenClaims(String(root, "iss") ?? "", String(root, "sub") ?? "", audience, exp, nbf, iat, String(root, "jti") ?? "", access);
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return false;
        }
    }

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool TryTime(JsonElement e, string name, out DateTimeOffset time)
    {
        time = default;
        if (!e.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var seconds)
            || seconds is < 0 or > 253402300799)
        {
            return false;
        }
        time = DateTimeOffset.FromUnixTimeSeconds(seconds);
        return true;
    }

    private static bool TryDecode(ReadOnlySpan<char> text, out byte[] bytes)
    {
        bytes = [];
        try
        {
            bytes = Base64Url.DecodeFromChars(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
