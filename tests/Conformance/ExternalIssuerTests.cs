using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Wharf.Gateway.Auth;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>
/// Token mode trusting an external issuer (its JWKS file): the gateway serves no token endpoint, names the issuer's
/// realm in challenges, and accepts that issuer's tokens — their <c>access</c> claim decides — and nobody else's.
/// </summary>
public sealed class ExternalIssuerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 120000)]
    public async Task Tokens_of_the_trusted_issuer_are_accepted_and_others_refused()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wharf-extiss-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var q = ec.ExportParameters(false).Q;
            var jwks = Path.Combine(dir, "jwks.json");
            await File.WriteAllTextAsync(jwks, $$"""{"keys":[{"kty":"EC","crv":"P-256","kid":"ext-1","x":"{{Base64Url.EncodeToString(q.X)}}","y":"{{Base64Url.EncodeToString(q.Y)}}"}]}""", Ct);
            var app = AllInOne.Build(
                ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(dir, "data")}", "--Wharf:Auth:Mode=Token",
                 $"--Wharf:Auth:Token:TrustedKeys={jwks}", "--Wharf:Auth:Token:Issuer=https://auth.example", "--Wharf:Auth:Token:Audience=registry.example",
                 "--Wharf:Auth:Token:Realm=https://auth.example/token"]) ?? throw new InvalidOperationException("refused");
            await using (app)
            {
                await app.StartAsync(Ct);
                using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

                using var challenged = await http.GetAsync("/v2/team/app/tags/list", Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, challenged.StatusCode);
                Assert.Equal("Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:team/app:pull\"",
                    challenged.Headers.WwwAuthenticate.ToString());
                using var noEndpoint = await http.GetAsync("/auth/token", Ct);
                Assert.Equal(HttpStatusCode.NotFound, noEndpoint.StatusCode);

                var issuer = new TokenOptions { Issuer = "https://auth.example", Audience = "registry.example" };
                var signer = TokenKey.From(ec, canSign: true, id: "ext-1");
                var external = new TokenService(issuer, signer, [signer]);
                var push = external.IssueAccess("ci", [new AccessScope("repository", "team/app", ["pull", "push"])], out _);
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", push);
                using var upload = await http.PostAsync("/v2/team/app/blobs/uploads/", null, Ct);
                Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
                using var other = await http.PostAsync("/v2/team/other/blobs/uploads/", null, Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);

                // With no policy, anonymous may do nothing: an anonymous token does not open even GET /v2/.
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", external.IssueAccess("", [], out _));
                using var anonymous = await http.GetAsync("/v2/", Ct);
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

                // The same claims from another issuer name, or signed by another key, are refused.
                var otherIssuer = new TokenService(new TokenOptions { Issuer = "https://evil.example", Audience = "registry.example" }, signer, [signer]);
                var otherKey = TokenKey.Generate();
                foreach (var forged in new[] { otherIssuer.IssueAccess("ci", [new AccessScope("repository", "team/app", ["pull"])], out _),
                                               new TokenService(issuer, otherKey, [otherKey]).IssueAccess("ci", [new AccessScope("repository", "team/app", ["pull"])], out _) })
                {
                    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", forged);
                    using var refused = await http.GetAsync("/v2/team/app/tags/list", Ct);
                    Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                    Assert.Contains("error=\"invalid_token\"", refused.Headers.WwwAuthenticate.ToString());
                }
                await app.StopAsync(Ct);
            }
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }
}

public sealed class TokenConfigurationTests
{
    [Fact(Timeout = 30000)]
    public void Token_mode_refuses_to_start_with_unusable_keys_or_settings()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wharf-tokcfg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var htpasswd = Path.Combine(dir, "htpasswd");
            File.WriteAllText(htpasswd, BasicAuthFixture.Htpasswd);
            var notAKey = Path.Combine(dir, "not-a-key.pem");
            File.WriteAllText(notAKey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
            using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
            var wrongCurve = Path.Combine(dir, "p384.pem");
            File.WriteAllText(wrongCurve, p384.ExportPkcs8PrivateKeyPem());
            var publicOnly = Path.Combine(dir, "public.pem");
            File.WriteAllText(publicOnly, TokenKey.Generate().ExportPublicPem());
            string[] common = ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(dir, "data")}", "--Wharf:Auth:Mode=Token"];
            foreach (var bad in new[]
            {
                new[] { "--Wharf:Auth:Htpasswd=/nonexistent" },
                [$"--Wharf:Auth:Htpasswd={htpasswd}", $"--Wharf:Auth:Token:SigningKey={notAKey}"],
                [$"--Wharf:Auth:Htpasswd={htpasswd}", $"--Wharf:Auth:Token:SigningKey={wrongCurve}"],
                [$"--Wharf:Auth:Htpasswd={htpasswd}", $"--Wharf:Auth:Token:SigningKey={publicOnly}"],
                [$"--Wharf:Auth:Htpasswd={htpasswd}", "--Wharf:Auth:Token:LifetimeSeconds=5"],
                [$"--Wharf:Auth:Token:TrustedKeys={publicOnly}"],
                [$"--Wharf:Auth:Token:TrustedKeys={notAKey}", "--Wharf:Auth:Token:Realm=https://auth.example/token"],
                [$"--Wharf:Auth:Htpasswd={htpasswd}", "--Wharf:Auth:TrustedProxies:0=not-an-address"],
                [$"--Wharf:Auth:Htpasswd={htpasswd}", "--Wharf:Auth:Policies:0:Subjects:0=alice", "--Wharf:Auth:Policies:0:Repositories:0=x", "--Wharf:Auth:Policies:0:Actions:0=write"],
            })
            {
                Assert.Null(AllInOne.Build([.. common, .. bad]));
            }
            // A gateway process has no data folder to keep a generated key in.
            Assert.Null(Wharf.Gateway.GatewayHost.Build(["--urls", "http://127.0.0.1:0", "--Wharf:Membership:Provider=Redis", "--Wharf:Membership:Address=127.0.0.1:1",
                "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Htpasswd={htpasswd}"]));
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }
}
