using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using CsCheck;
using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Auth;

public class JsonWebTokenTests
{
    private static readonly TokenOptions Options = new() { Issuer = "wharf", Audience = "registry.test" };
    private static readonly AccessScope AppPull = new("repository", "team/app", ["pull"]);

    private static TokenService Service(TokenKey key, params TokenKey[] more) => new(Options, key, [key, .. more]);

    private static string Sign(TokenKey key, string header, string payload) =>
        B64(header) + "." + B64(payload) + "." + Base64Url.EncodeToString(key.Sign(Encoding.ASCII.GetBytes(B64(header) + "." + B64(payload))));

    private static string B64(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    private static string Payload(string iss = "wharf", string aud = "registry.test", long? exp = null, long? nbf = null, string access = """[{"type":"repository","name":"team/app","actions":["pull"]}]""")
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return $$"""{"iss":"{{iss}}","sub":"alice","aud":"{{aud}}","exp":{{exp ?? now + 300}},"nbf":{{nbf ?? now - 10}},"iat":{{now}},"jti":"x","access":{{access}}}""";
    }

    [Fact]
    public void An_issued_token_validates_and_carries_its_claims()
    {
        var key = TokenKey.Generate();
        var service = Service(key);
        var token = service.IssueAccess("alice", [AppPull], out _);
        Assert.True(service.TryValidate(token, out var claims, out var error), error);
        Assert.Equal(("wharf", "alice", "registry.test"), (claims.Issuer, claims.Subject, claims.Audience.Single()));
        Assert.Equal("repository:team/app:pull", claims.Access.Single().ToString());
        Assert.False(string.IsNullOrEmpty(claims.Id));
        using var header = JsonDocument.Parse(Base64Url.DecodeFromChars(token.Split('.')[0]));
        Assert.Equal(("ES256", key.Id), (header.RootElement.GetProperty("alg").GetString(), header.RootElement.GetProperty("kid").GetString()));
    }

    [Fact]
    public void Rs256_keys_from_pem_sign_and_verify()
    {
        using var rsa = RSA.Create(2048);
        var key = TokenKey.ReadPem(rsa.ExportPkcs8PrivateKeyPem()).Single();
        Assert.Equal(("RS256", true), (key.Algorithm, key.CanSign));
        var service = Service(key);
        Assert.True(service.TryValidate(service.IssueAccess("bob", [], out _), out _, out _));
    }

    [Theory]
    [InlineData("expired")]
    [InlineData("not yet valid")]
    [InlineData("wrong audience")]
    [InlineData("wrong issuer")]
    public void Tokens_out_of_time_or_for_someone_else_are_refused(string what)
    {
        var key = TokenKey.Generate();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = $$"""{"alg":"ES256","typ":"JWT","kid":"{{key.Id}}"}""";
        var payload = what switch
        {
            "expired" => Payload(exp: now - 120, nbf: now - 600),
            "not yet valid" => Payload(nbf: now + 600, exp: now + 900),
            "wrong audience" => Payload(aud: "another-registry"),
            _ => Payload(iss: "evil"),
        };
        Assert.False(Service(key).TryValidate(Sign(key, header, payload), out _, out var error));
        Assert.Contains(what, error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_token_signed_by_another_key_is_refused()
    {
        var key = TokenKey.Generate();
        var other = TokenKey.Generate();
        Assert.False(Service(key).TryValidate(Service(other).IssueAccess("alice", [AppPull], out _), out _, out var error));
        Assert.Equal("bad signature or unknown key", error);
    }

    [Fact]
    public void Alg_none_and_hmac_with_the_public_key_are_refused()
    {
        var key = TokenKey.Generate();
        var none = B64("""{"alg":"none","typ":"JWT"}""") + "." + B64(Payload()) + ".";
        Assert.False(Service(key).TryValidate(none, out _, out _));
        var noneWithSig = B64("""{"alg":"none","typ":"JWT"}""") + "." + B64(Payload()) + ".AAAA";
        Assert.False(Service(key).TryValidate(noneWithSig, out _, out var error));
        Assert.Contains("not accepted", error);
        var input = B64("""{"alg":"HS256","typ":"JWT"}""") + "." + B64(Payload());
        var hmac = HMACSHA256.HashData(Encoding.ASCII.GetBytes(key.ExportPublicPem()), Encoding.ASCII.GetBytes(input));
        Assert.False(Service(key).TryValidate(input + "." + Base64Url.EncodeToString(hmac), out _, out _));
    }

    [Fact]
    public void A_scope_widened_by_editing_the_payload_breaks_the_signature()
    {
        var key = TokenKey.Generate();
        var service = Service(key);
        var parts = service.IssueAccess("alice", [AppPull], out _).Split('.');
        var payload = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[1])).Replace("[\"pull\"]", "[\"pull\",\"push\",\"delete\"]", StringComparison.Ordinal);
        Assert.Contains("delete", payload);
        Assert.False(service.TryValidate(parts[0] + "." + B64(payload) + "." + parts[2], out _, out var error));
        Assert.Equal("bad signature or unknown key", error);
    }

    [Fact]
    public void A_token_for_one_repository_grants_nothing_on_another()
    {
        var access = new RegistryAccess("alice", new AccessPolicy([]), [AppPull]);
        Assert.True(access.Allows("team/app", "pull"));
        Assert.False(access.Allows("team/app", "push"));
        Assert.False(access.Allows("team/other", "pull"));
        Assert.False(access.Allows("team/app/sub", "pull"));
    }

    [Fact]
    public void During_a_rotation_tokens_of_the_old_key_still_validate_while_the_new_key_signs()
    {
        var old = TokenKey.Generate();
        var next = TokenKey.Generate();
        var oldToken = Service(old).IssueAccess("alice", [AppPull], out _);
        var rotated = new TokenService(Options, next, [next, .. TokenKey.ReadPem(old.ExportPublicPem())]);
        Assert.True(rotated.TryValidate(oldToken, out _, out _));
        var newToken = rotated.IssueAccess("alice", [AppPull], out _);
        Assert.True(rotated.TryValidate(newToken, out _, out _));
        Assert.False(Service(old).TryValidate(newToken, out _, out _));
    }

    [Fact]
    public void External_issuers_keys_come_from_a_jwks_file_or_a_certificate_bundle()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var p = ec.ExportParameters(false);
        var jwks = $$"""{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","x":"{{Base64Url.EncodeToString(p.Q.X)}}","y":"{{Base64Url.EncodeToString(p.Q.Y)}}"}]}""";
        var external = new TokenOptions { Issuer = "https://auth.example", Audience = "registry.test" };
        var signer = TokenKey.From(ec, canSign: true, id: "k1");
        var token = new TokenService(external, signer, [signer]).IssueAccess("ci", [AppPull], out _);
        Assert.True(new TokenService(external, null, TokenKey.ReadJwks(jwks)).TryValidate(token, out var claims, out _));
        Assert.Equal("ci", claims.Subject);

        var request = new CertificateRequest("CN=issuer", ec, HashAlgorithmName.SHA256);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var bundle = TokenKey.ReadPem(cert.ExportCertificatePem());
        Assert.False(bundle.Single().CanSign);
        // The bundle's key has an id of its own: a token naming the issuer's kid, or none, is still verified by it.
        Assert.NotEqual("k1", bundle.Single().Id);
        Assert.True(new TokenService(external, null, bundle).TryValidate(token, out _, out _));
        var noKid = B64("""{"alg":"ES256","typ":"JWT"}""") + "." + B64(Payload(iss: "https://auth.example"));
        noKid += "." + Base64Url.EncodeToString(signer.Sign(Encoding.ASCII.GetBytes(noKid)));
        Assert.True(new TokenService(external, null, bundle).TryValidate(noKid, out _, out _));
    }

    [Fact]
    public void Refresh_tokens_are_not_access_tokens_and_access_tokens_do_not_refresh()
    {
        var service = Service(TokenKey.Generate());
        var refresh = service.IssueRefresh("alice");
        Assert.False(service.TryValidate(refresh, out _, out var error));
        Assert.Equal("wrong audience", error);
        Assert.True(service.TryValidateRefresh(refresh, out var subject, out _));
        Assert.Equal("alice", subject);
        Assert.False(service.TryValidateRefresh(service.IssueAccess("alice", [], out _), out _, out _));
    }

    [Fact]
    public void A_validated_token_is_not_believed_past_its_expiry()
    {
        var time = new ManualTime { Now = DateTimeOffset.UtcNow };
        var key = TokenKey.Generate();
        var service = new TokenService(Options, key, [key], time);
        var token = service.IssueAccess("alice", [AppPull], out _);
        Assert.True(service.TryValidate(token, out _, out _));
        time.Now += TimeSpan.FromMinutes(6);
        Assert.False(service.TryValidate(token, out _, out _));
    }

    [Fact]
    public void Any_string_is_refused_without_throwing() =>
        Gen.OneOf(Gen.String, Gen.String[Gen.Char["eyJ.-_AZaz09="], 0, 200])
            .Sample(text => Assert.False(Service(TokenKey.Generate()).TryValidate(text, out _, out _)), iter: 2_000);

    [Fact]
    public void Any_change_to_a_valid_token_is_refused_without_throwing()
    {
        var key = TokenKey.Generate();
        var service = Service(key);
        var token = service.IssueAccess("alice", [AppPull], out _);
        Gen.Select(Gen.Int[0, token.Length - 1], Gen.Char["eyJ.-_AZaz09=\"{}"]).Sample((at, c) =>
        {
            var changed = token[..at] + c + token[(at + 1)..];
            if (changed != token)
            {
                // Base64url's last character may carry unused bits: a change there can decode to the same bytes.
                var same = changed.Split('.') is { Length: 3 } p && TryBytes(p, out var a) && TryBytes(token.Split('.'), out var b) && a.SequenceEqual(b);
                Assert.Equal(same, service.TryValidate(changed, out _, out _));
            }
        }, iter: 3_000);
    }

    private static bool TryBytes(string[] parts, out byte[] bytes)
    {
        try
        {
            bytes = [.. parts.SelectMany(p => Base64Url.DecodeFromChars(p))];
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }

    [Fact]
    public void Authorization_headers_of_any_shape_are_parsed_or_refused_without_throwing() =>
        Gen.OneOf(Gen.String, Gen.String.Select(s => "Basic " + s), Gen.String.Select(s => "Bearer " + s),
                Gen.String.Select(s => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(s))))
            .Sample(header =>
            {
                RegistryAuthFilter.TryBasic(header, out _, out _);
                RegistryAuthFilter.TryBearer(header, out _);
            }, iter: 20_000);

    private sealed class ManualTime : TimeProvider
    {
        public DateTimeOffset Now { get; set; }

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
