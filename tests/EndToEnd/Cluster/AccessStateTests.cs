using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Wharf.Contracts.Placement;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// The access state is a replicated log like a repository's (docs/security.md "Stored identities"): with R = 3, the
/// silo leading it killed with SIGKILL, users and robots are still there, a new user can be created, and a gateway
/// started afresh (nothing in its memory) reads all of them from the remaining owners.
/// </summary>
public sealed class AccessStateTests
{
    private const string RootPassword = "root-Pass-1234";

    [Fact(Timeout = 300_000)]
    public async Task Users_and_robots_survive_the_loss_of_the_silo_that_leads_them()
    {
        var ct = TestContext.Current.CancellationToken;
        var scratch = TempFolders.Create("wharf-e2e-access-");
        try
        {
            var key = Path.Combine(scratch, "token-key.pem");
            using (var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                await File.WriteAllTextAsync(key, ec.ExportPkcs8PrivateKeyPem(), ct);
            }
            await using var cluster = await ClusterProcesses.StartAsync(3, 1, ct, replicas: 3, gatewayArguments:
            [
                "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Token:SigningKey={key}",
                "--Wharf:Auth:Bootstrap:User=root", $"--Wharf:Auth:Bootstrap:Password={RootPassword}",
            ]);
            var gateway = cluster.Gateways[0];
            using var root = Client(gateway.BaseAddress, "root", RootPassword);
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            {
                using var response = await root.GetAsync("admin/v1/users", ct);
                return response.StatusCode == HttpStatusCode.OK;
            }, () => "the bootstrap administrator never appeared\n" + cluster.Logs(), ct);
            (await root.PostAsJsonAsync("admin/v1/users", new { name = "kim", password = "kim-Pass-12" }, ct)).EnsureSuccessStatusCode();
            using var created = await root.PostAsJsonAsync("admin/v1/robots", new { name = "keeper" }, ct);
            created.EnsureSuccessStatusCode();
            var secret = JsonNode.Parse(await created.Content.ReadAsStringAsync(ct))!["secret"]!.GetValue<string>();

            // The leader is placed on the first active owner of the access log's shard: kill that one.
            var view = (await cluster.StateAsync(cluster.Silos[0], ct)).View;
            var leader = RendezvousPlacement.Owners(view, Shards.OfAccess(), 3)[0].NodeId;
            var victim = cluster.Silos.Single(s => s.NodeId == leader);
            victim.Process.Kill();
            var survivor = cluster.Silos.First(s => s != victim);
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
                !(await cluster.StateAsync(survivor, ct)).IsActive(victim.SiloEndpoint),
                () => $"{victim.SiloEndpoint} is still Active after SIGKILL\n{cluster.Logs()}", ct);

            // A change needs W = 2 of the two owners left; it may answer 503 while the grain moves.
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
            {
                using var response = await root.PostAsJsonAsync("admin/v1/users", new { name = "lee", password = "lee-Pass-123" }, ct);
                return response.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict;
            }, () => "no user could be created after the leader's silo died\n" + cluster.Logs(), ct);

            // A gateway with nothing in memory reads every identity from the owners left.
            await gateway.StopAsync(TimeSpan.FromSeconds(30));
            await gateway.StartAgainAsync(ct);
            using var rootAgain = Client(gateway.BaseAddress, "root", RootPassword);
            string users = "";
            await ClusterProcesses.Eventually(TimeSpan.FromSeconds(60), async () =>
            {
                using var response = await rootAgain.GetAsync("admin/v1/users", ct);
                users = await response.Content.ReadAsStringAsync(ct);
                return response.StatusCode == HttpStatusCode.OK;
            }, () => "the restarted gateway does not know the administrator\n" + cluster.Logs(), ct);
            Assert.Contains("\"kim\"", users);
            Assert.Contains("\"lee\"", users);
            using var robot = Client(gateway.BaseAddress, "robot$keeper", secret);
            using var token = await robot.GetAsync("auth/token?service=wharf-registry", ct);
            Assert.Equal(HttpStatusCode.OK, token.StatusCode);
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
