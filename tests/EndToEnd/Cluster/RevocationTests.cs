using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Revocation pushed (docs/security.md "Revocation"): one silo and two gateway processes in Token mode sharing one
/// signing key; skopeo logs in as a robot and pushes; the robot revoked through gateway A is refused by gateway B,
/// token obtained before included, within 2 s, and skopeo's next push fails.
/// </summary>
public sealed class RevocationTests
{
    private const string RootPassword = "root-Pass-1234";

    [Fact(Timeout = 240_000)]
    public async Task A_robot_revoked_through_one_gateway_is_refused_by_the_other_within_two_seconds()
    {
        var ct = TestContext.Current.CancellationToken;
        var scratch = TempFolders.Create("wharf-e2e-revoke-");
        try
        {
            var key = Path.Combine(scratch, "token-key.pem");
            using (var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                await File.WriteAllTextAsync(key, ec.ExportPkcs8PrivateKeyPem(), ct);
            }
            await using var cluster = await ClusterProcesses.StartAsync(1, 2, ct, gatewayArguments:
            [
                "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Token:SigningKey={key}",
                "--Wharf:Auth:Bootstrap:User=root", $"--Wharf:Auth:Bootstrap:Password={RootPassword}",
            ]);
            using var a = Client(cluster.Gateways[0].BaseAddress, "root", RootPassword);
            // The bootstrap administrator exists once either gateway created it.
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            {
                using var response = await a.GetAsync("admin/v1/users", ct);
                return response.StatusCode == HttpStatusCode.OK;
            }, () => "the bootstrap administrator never appeared\n" + cluster.Logs(), ct);
            (await a.PostAsJsonAsync("admin/v1/policies", new { name = "ci", subjects = new[] { "robot$ci" }, repositories = new[] { "e2e/ci/**" }, actions = new[] { "pull", "push" } }, ct)).EnsureSuccessStatusCode();
            using var created = await a.PostAsJsonAsync("admin/v1/robots", new { name = "ci" }, ct);
            created.EnsureSuccessStatusCode();
            var secret = JsonNode.Parse(await created.Content.ReadAsStringAsync(ct))!["secret"]!.GetValue<string>();

            // Gateway B learned of the robot without being told by a request: its token service issues a token.
            using var robotOnB = Client(cluster.Gateways[1].BaseAddress, "robot$ci", secret);
            string token = "";
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(10), async () =>
            {
                using var response = await robotOnB.GetAsync("auth/token?service=wharf-registry&scope=repository:e2e/ci/app:pull,push", ct);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    return false;
                }
                token = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!["token"]!.GetValue<string>();
                return true;
            }, () => "gateway B never accepted the robot", ct);
            using var bearer = new HttpClient { BaseAddress = cluster.Gateways[1].BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using (var upload = await bearer.PostAsync("v2/e2e/ci/app/blobs/uploads/", null, ct))
            {
                Assert.Equal(HttpStatusCode.Accepted, upload.StatusCode);
            }
            // A real client logs in as the robot like as any user, and pushes through gateway B.
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            source.AddImage("v1", [32 << 10]);
            var host = cluster.Gateways[1].Host;
            await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", tools.AuthFile, "-u", "robot$ci", "-p", secret, host).EnsureSuccessAsync();
            await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), $"docker://{host}/e2e/ci/app:v1").EnsureSuccessAsync();

            using (var revoked = await a.PostAsync("admin/v1/robots/ci/revoke", null, ct))
            {
                revoked.EnsureSuccessStatusCode();
            }
            var clock = Stopwatch.StartNew();
            HttpStatusCode status;
            do
            {
                using var response = await bearer.GetAsync("v2/", ct);
                status = response.StatusCode;
                if (status == HttpStatusCode.OK)
                {
                    await Task.Delay(20, ct);
                }
            }
            while (status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(10));
            TestContext.Current.TestOutputHelper?.WriteLine($"gateway B refused the revoked robot's token {clock.ElapsedMilliseconds} ms after gateway A acknowledged the revocation");
            Assert.Equal(HttpStatusCode.Unauthorized, status);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"gateway B refused it only after {clock.ElapsedMilliseconds} ms");
            using var login = await robotOnB.GetAsync("auth/token?service=wharf-registry", ct);
            Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
            var refused = await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), $"docker://{host}/e2e/ci/app:v2");
            Assert.NotEqual(0, refused.ExitCode);
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }

    private static HttpClient Client(Uri address, string user, string password)
    {
        var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return http;
    }
}
