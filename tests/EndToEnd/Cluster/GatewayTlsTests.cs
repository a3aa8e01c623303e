using System.Net;
using System.Security.Cryptography;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// The separate gateway process serving HTTPS (development mode, its CA in the gateway's folder) in Token mode in
/// front of one silo: the challenge's realm is https, and skopeo logs in, pushes and pulls trusting only that CA.
/// </summary>
public sealed class GatewayTlsTests
{
    // `htpasswd -nbB alice 's3cret-Pass'` (apache2-utils), verbatim.
    private const string Htpasswd = "alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG\n";

    [Fact(Timeout = 240_000)]
    public async Task A_gateway_process_serves_TLS_with_an_https_realm_and_skopeo_pushes_and_pulls_through_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var scratch = TempFolders.Create("wharf-e2e-gateway-tls-");
        try
        {
            var htpasswd = Path.Combine(scratch, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, Htpasswd, ct);
            var signingKey = Path.Combine(scratch, "token-key.pem");
            using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                await File.WriteAllTextAsync(signingKey, key.ExportPkcs8PrivateKeyPem(), ct);
            }
            await using var cluster = await ClusterProcesses.StartAsync(siloCount: 1, gatewayCount: 0, ct);
            var gateway = await cluster.StartGatewayAsync(ct,
                ["--Wharf:Tls:Mode=Development", "--Wharf:Tls:DevelopmentPath=tls",
                 "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Htpasswd={htpasswd}", $"--Wharf:Auth:Token:SigningKey={signingKey}"],
                scheme: "https", probeGrainCall: false);

            using (var http = gateway.CreateHttpClient(TimeSpan.FromSeconds(10)))
            {
                // Ready once a grain call with a token (an unknown repository's tags) answers 404 rather than 503.
                using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, "auth/token?service=wharf-registry&scope=repository:e2e/probe:pull");
                tokenRequest.Headers.Authorization = new("Basic", Convert.ToBase64String("alice:s3cret-Pass"u8.ToArray()));
                using var tokenResponse = await http.SendAsync(tokenRequest, ct);
                using var tokenJson = System.Text.Json.JsonDocument.Parse(await tokenResponse.EnsureSuccessStatusCode().Content.ReadAsStringAsync(ct));
                var token = tokenJson.RootElement.GetProperty("token").GetString();
                await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
                {
                    using var probe = new HttpRequestMessage(HttpMethod.Get, "v2/e2e/probe/tags/list");
                    probe.Headers.Authorization = new("Bearer", token);
                    using var response = await http.SendAsync(probe, ct);
                    return response.StatusCode == HttpStatusCode.NotFound;
                }, () => $"gateway {gateway.Host} does not answer a grain call\n{gateway.Log}", ct);

                using var challenge = await http.GetAsync("v2/", ct);
                Assert.Equal(HttpStatusCode.Unauthorized, challenge.StatusCode);
                Assert.Contains($"realm=\"https://{gateway.Host}/auth/token\"", challenge.Headers.WwwAuthenticate.ToString());
            }

            var certDir = Directory.CreateDirectory(Path.Combine(scratch, "certs.d", gateway.Host)).FullName;
            File.Copy(gateway.DevelopmentCaPath, Path.Combine(certDir, "ca.crt"));
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            var image = source.AddImage("v1", [256 << 10, 3 << 10]);
            var target = $"docker://{gateway.Host}/e2e/gateway-tls/app:v1";
            await tools.SkopeoAsync("login", "--cert-dir", certDir, "--authfile", tools.AuthFile, "-u", "alice", "-p", "s3cret-Pass", gateway.Host).EnsureSuccessAsync();
            await tools.SkopeoAsync("copy", "--dest-cert-dir", certDir, "--dest-authfile", tools.AuthFile, source.Reference("v1"), target).EnsureSuccessAsync();
            var back = Directory.CreateDirectory(Path.Combine(scratch, "back")).FullName;
            await tools.SkopeoAsync("copy", "--src-cert-dir", certDir, "--src-authfile", tools.AuthFile, target, $"oci:{back}:v1").EnsureSuccessAsync();
            Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }
}
