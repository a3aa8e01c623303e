using System.Net;
using System.Text.Json;
using Wharf.Membership.Consul;
using Wharf.Membership.Topology;
using Wharf.Silo;

namespace Wharf.Tests.Membership;

/// <summary>
/// A whole silo (store, Orleans, byte service) in this process on the Consul test peer built from Consul's API docs:
/// it registers in Consul's catalog with its health check, enters the placement view in Consul KV, and deregisters
/// and gives its node id back when it stops.
/// </summary>
public sealed class SiloOnConsulPeerTests(ConsulPeerBackend backend) : IClassFixture<ConsulPeerBackend>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string[] SiloArgs(string dataPath, int httpPort, string clusterId) =>
    [
        "--urls", $"http://127.0.0.1:{httpPort}",
        "--Wharf:Role=Silo",
        $"--Wharf:ClusterId={clusterId}",
        $"--Wharf:DataPath={dataPath}",
        "--Wharf:Membership:Provider=Consul",
        $"--Wharf:Membership:Address={backend.Peer.Address}",
        $"--Wharf:Membership:Token={ConsulPeerBackend.Token}",
        "--Logging:LogLevel:Default=Warning",
    ];

    [Fact(Timeout = 60000)]
    public async Task ConsulPeer_sees_a_silo_register_join_the_view_and_leave_cleanly()
    {
        var cluster = "s" + Guid.NewGuid().ToString("N")[..8];
        var data = Directory.CreateTempSubdirectory("wharf-consul-silo-").FullName;
        var httpPort = RedisServer.FreePort();
        try
        {
            var app = await SiloHost.BuildAsync(SiloArgs(data, httpPort, cluster), null, Ct);
            Assert.NotNull(app);
            await app.StartAsync(Ct);
            var nodeId = File.ReadAllText(Path.Combine(data, "node-id")).Trim();
            using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") })
            {
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz", Ct)).StatusCode);
                var cluster1 = JsonDocument.Parse(await http.GetStringAsync("/admin/cluster", Ct)).RootElement;
                Assert.Equal(nodeId, cluster1.GetProperty("view").GetProperty("nodes")[0].GetProperty("nodeId").GetString());
            }

            var service = Assert.Single(backend.Peer.Services.Values, s => s.Id == $"wharf-silo-{nodeId}");
            Assert.Equal("wharf-silo", service.Name);
            Assert.Equal(httpPort, service.Port);
            Assert.Equal($"http://127.0.0.1:{httpPort}/healthz", service.Check!.Http);

            using var consul = new ConsulClient(backend.Peer.Address, ConsulPeerBackend.Token);
            var view = await new PlacementViewStore(new ConsulCasStore(consul), cluster).ReadAsync(Ct);
            Assert.Equal(nodeId, Assert.Single(view.Nodes).NodeId);
            Assert.NotNull(await consul.GetAsync($"wharf/{cluster}/nodes/{nodeId}/lease", Ct));

            await app.StopAsync(Ct);
            await app.DisposeAsync();
            Assert.DoesNotContain(backend.Peer.Services.Values, s => s.Id == $"wharf-silo-{nodeId}");
            Assert.Null(await consul.GetAsync($"wharf/{cluster}/nodes/{nodeId}/lease", Ct));
            // The node stays in the view: a restart moves nothing.
            Assert.Single((await new PlacementViewStore(new ConsulCasStore(consul), cluster).ReadAsync(Ct)).Nodes);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact(Timeout = 60000)]
    public async Task A_second_silo_with_a_node_id_held_by_a_live_one_refuses_to_start()
    {
        var cluster = "s" + Guid.NewGuid().ToString("N")[..8];
        var first = Directory.CreateTempSubdirectory("wharf-consul-silo-").FullName;
        var copy = Directory.CreateTempSubdirectory("wharf-consul-silo-").FullName;
        try
        {
            var app = await SiloHost.BuildAsync(SiloArgs(first, RedisServer.FreePort(), cluster), null, Ct);
            Assert.NotNull(app);
            await app.StartAsync(Ct);
            // A data folder copied from a live node carries its node id.
            File.Copy(Path.Combine(first, "node-id"), Path.Combine(copy, "node-id"));
            var e = await Assert.ThrowsAsync<NodeIdInUseException>(() => SiloHost.BuildAsync(SiloArgs(copy, RedisServer.FreePort(), cluster), null, Ct));
            Assert.Contains(File.ReadAllText(Path.Combine(first, "node-id")).Trim(), e.Message);
            await app.StopAsync(Ct);
            await app.DisposeAsync();
        }
        finally
        {
            Directory.Delete(first, recursive: true);
            Directory.Delete(copy, recursive: true);
        }
    }
}
