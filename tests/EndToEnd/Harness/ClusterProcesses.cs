using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Tests.Membership;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>One member of Orleans' membership as a silo's <c>/admin/cluster</c> reports it.</summary>
public sealed record ClusterMember(string Address, string Endpoint, string Status);

/// <summary>What a silo's <c>/admin/cluster</c> answers: the placement view and Orleans' membership.</summary>
public sealed record ClusterState(PlacementView View, IReadOnlyList<ClusterMember> Members)
{
    /// <summary>True when some generation of the silo on this Orleans endpoint is Active.</summary>
    public bool IsActive(string siloEndpoint) => Members.Any(m => m.Endpoint == siloEndpoint && m.Status == "Active");

    /// <summary>The statuses of every generation of the silo on this Orleans endpoint.</summary>
    public string StatusesOf(string siloEndpoint) =>
        string.Join(",", Members.Where(m => m.Endpoint == siloEndpoint).Select(m => m.Status));
}

/// <summary>A silo of a <see cref="ClusterProcesses"/>: its process and the ports it keeps across restarts.</summary>
public sealed class SiloNode(RegistryProcess process, int siloPort, int bytesPort = 0, int gatewayPort = 0)
{
    public RegistryProcess Process { get; } = process;

    /// <summary>Orleans' silo endpoint, as the placement view and membership name it.</summary>
    public string SiloEndpoint { get; } = $"127.0.0.1:{siloPort}";

    /// <summary>The persistent node id the silo keeps in its data folder.</summary>
    public string NodeId => File.ReadAllText(Path.Combine(Process.DataPath, "node-id")).Trim();

    public Uri BaseAddress => Process.BaseAddress;

    /// <summary>The byte service (gRPC over h2c).</summary>
    public Uri ByteEndpoint { get; } = new($"http://127.0.0.1:{bytesPort}");

    /// <summary>Orleans' gateway port, where gateway processes connect as clients.</summary>
    public int OrleansGatewayPort { get; } = gatewayPort;
}

/// <summary>
/// A cluster of separate processes on loopback: a real redis-server for membership, silos (<c>Wharf.Silo.dll
/// --Wharf:Role=Silo</c>) and gateways (<c>Wharf.Gateway.dll</c>), every port free and fixed per process so a silo
/// restarts on the same ports and data folder. Failure detection is fast (the liveness settings below), every process
/// has a hard lifetime and is killed by its PID at the latest on dispose, and every folder is deleted.
/// </summary>
public sealed class ClusterProcesses : IAsyncDisposable
{
    /// <summary>Orleans' failure detection, shortened for tests (Orleans' ClusterMembershipOptions names).</summary>
    public static readonly string[] LivenessArguments =
    [
        "--Wharf:Liveness:ProbeTimeout=00:00:01",
        "--Wharf:Liveness:NumMissedProbesLimit=2",
        "--Wharf:Liveness:NumVotesForDeathDeclaration=1",
        "--Wharf:Liveness:TableRefreshTimeout=00:00:01",
        "--Wharf:Liveness:IAmAliveTablePublishTimeout=00:00:02",
    ];

    /// <summary>Beyond this, a process is killed whatever the test does (the longest test takes well under it).</summary>
    private static readonly TimeSpan ProcessLifetime = TimeSpan.FromMinutes(10);

    private readonly List<SiloNode> silos = [];
    private readonly List<RegistryProcess> gateways = [];
    private readonly HttpClient admin = new() { Timeout = TimeSpan.FromSeconds(5) };

    private readonly int replicas;
    private readonly string[] siloArguments;

    private readonly string[] gatewayArguments;

    private ClusterProcesses(RedisServer redis, int replicas, string[] siloArguments, string? clusterSecret, string[] gatewayArguments)
    {
        Redis = redis;
        this.replicas = replicas;
        string[] secret = clusterSecret is null ? [] : [$"--Wharf:Cluster:Secret={clusterSecret}"];
        this.siloArguments = [.. siloArguments, .. secret];
        this.gatewayArguments = [.. secret, .. gatewayArguments];
        if (clusterSecret is not null)
        {
            admin.DefaultRequestHeaders.Add("wharf-cluster-secret", clusterSecret);
        }
    }

    public RedisServer Redis { get; }
    public IReadOnlyList<SiloNode> Silos => silos;
    public IReadOnlyList<RegistryProcess> Gateways => gateways;

    private string[] MembershipArguments =>
        ["--Wharf:Membership:Provider=Redis", $"--Wharf:Membership:Address={Redis.Address}"];

    /// <summary>
    /// Starts redis-server, the silos (in parallel) and the gateways, and waits until every silo sees every silo
    /// Active in membership and in the view, and every gateway answers a grain call.
    /// </summary>
    /// <param name="replicas">R; W is a majority of it (R = 3: W = 2).</param>
    /// <param name="siloArguments">More configuration for every silo, those started later too.</param>
    /// <param name="clusterSecret">Wharf:Cluster:Secret for every silo and gateway (and the harness's admin calls).</param>
    /// <param name="siloAssemblies">The build each silo runs (null or missing: this build), e.g. a previous version.</param>
    /// <param name="gatewayArguments">More configuration for every gateway (auth, for one).</param>
    public static async Task<ClusterProcesses> StartAsync(int siloCount, int gatewayCount, CancellationToken ct, int replicas = 1, string[]? siloArguments = null, string? clusterSecret = null, string?[]? siloAssemblies = null, string[]? gatewayArguments = null)
    {
        var cluster = new ClusterProcesses(await RedisServer.StartAsync(), replicas, siloArguments ?? [], clusterSecret, gatewayArguments ?? []);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, siloCount).Select(i => cluster.StartSiloAsync(ct, siloAssemblies?.ElementAtOrDefault(i))));
            await cluster.WaitUntilFormedAsync(TimeSpan.FromSeconds(60), ct);
            await Task.WhenAll(Enumerable.Range(0, gatewayCount).Select(_ => cluster.StartGatewayAsync(ct)));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>Starts one more silo on fresh ports and a fresh data folder; returns once it answers /readyz.</summary>
    public async Task<SiloNode> StartSiloAsync(CancellationToken ct, string? assembly = null)
    {
        var (bytesPort, siloPort, gatewayPort) = (RegistryProcess.FreePort(), RegistryProcess.FreePort(), RegistryProcess.FreePort());
        // Every port chosen here, the bulk port too: the harness picks from its own range (20000-32000) and knows each
        // port it handed out (a silo left to pick one once took it from the kernel's ephemeral range, where another
        // socket took it first; silos now pick from 10000-19999, AutomaticPorts, but the harness keeps them fixed).
        var bulkPort = RegistryProcess.FreePort();
        var process = await RegistryProcess.StartNodeAsync(
            assembly ?? RegistryProcess.SiloAssemblyPath,
            [
                "--Wharf:Role=Silo", .. MembershipArguments, .. LivenessArguments,
                $"--Wharf:Bytes:Port={bytesPort}", $"--Wharf:Bytes:BulkPort={bulkPort}",
                $"--Wharf:Orleans:SiloPort={siloPort}", $"--Wharf:Orleans:GatewayPort={gatewayPort}",
                $"--Wharf:Replication:Factor={replicas}", $"--Wharf:Replication:WriteQuorum={replicas / 2 + 1}",
                .. siloArguments,
            ],
            "readyz", passDataPath: true, ProcessLifetime, ct);
        var node = new SiloNode(process, siloPort, bytesPort, gatewayPort);
        lock (silos)
        {
            silos.Add(node);
        }
        return node;
    }

    /// <summary>
    /// Starts one more gateway; with <paramref name="scheme"/> <c>https</c> and
    /// <c>--Wharf:Tls:Mode=Development --Wharf:Tls:DevelopmentPath=tls</c> its CA is the process's <see cref="RegistryProcess.DevelopmentCaPath"/>
    /// (a gateway runs in its own folder). Without <paramref name="probeGrainCall"/> (a gateway with auth, where an
    /// anonymous probe answers 401) the caller waits for the Orleans client itself.
    /// </summary>
    public async Task<RegistryProcess> StartGatewayAsync(CancellationToken ct, string[]? arguments = null, string scheme = "http", bool probeGrainCall = true)
    {
        var gateway = await RegistryProcess.StartNodeAsync(
            RegistryProcess.GatewayAssemblyPath,
            [.. MembershipArguments, "--Wharf:Liveness:GatewayListRefreshPeriod=00:00:01", .. gatewayArguments, .. arguments ?? []],
            "readyz", passDataPath: false, ProcessLifetime, ct, scheme);
        lock (gateways)
        {
            gateways.Add(gateway);
        }
        if (!probeGrainCall)
        {
            return gateway;
        }
        // The gateway's Orleans client may still be connecting: ready once a grain call (an unknown repository's
        // tags) answers 404 rather than 503.
        using var http = gateway.CreateHttpClient(TimeSpan.FromSeconds(5));
        await Eventually(TimeSpan.FromSeconds(60), async () =>
        {
            using var response = await http.GetAsync("v2/e2e/cluster/probe/tags/list", ct);
            // With auth on, 401 comes before any grain call: /healthz then, and the test waits for what it needs.
            return response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized;
        }, () => $"gateway {gateway.Host} does not answer a grain call\n{gateway.Log}", ct);
        return gateway;
    }

    /// <summary>Waits until every running silo sees all running silos Active in membership and in the view.</summary>
    public async Task WaitUntilFormedAsync(TimeSpan timeout, CancellationToken ct)
    {
        string last = "";
        await Eventually(timeout, async () =>
        {
            var running = silos.Where(s => s.Process.Pid is not null).ToList();
            foreach (var silo in running)
            {
                var state = await StateAsync(silo, ct);
                last = $"{silo.SiloEndpoint}: view {string.Join(",", state.View.Nodes.Select(n => $"{n.SiloEndpoint}={n.State}"))}; members {string.Join(",", state.Members.Select(m => $"{m.Endpoint}={m.Status}"))}";
                if (!running.All(s => state.IsActive(s.SiloEndpoint) && state.View.Nodes.Any(n => n.SiloEndpoint == s.SiloEndpoint)))
                {
                    return false;
                }
            }
            return true;
        }, () => $"the cluster did not form: {last}", ct);
    }

    /// <summary>A silo's <c>/admin/cluster</c>.</summary>
    public async Task<ClusterState> StateAsync(SiloNode silo, CancellationToken ct)
    {
        var json = await admin.GetStringAsync(new Uri(silo.BaseAddress, "admin/cluster"), ct);
        var doc = JsonSerializer.Deserialize<AdminCluster>(json, JsonOptions)!;
        return new ClusterState(doc.View, doc.Members.Select(m => new ClusterMember(m.Address, m.Endpoint, m.Status)).ToList());
    }

    /// <summary>The node that owns a repository's records (R = 1) in this view.</summary>
    public static string OwnerOfRepository(PlacementView view, string repository) =>
        RendezvousPlacement.Owners(view, Shards.OfRepository(repository), 1)[0].NodeId;

    /// <summary>The node that owns a digest (blob bytes pushed with their digest, manifest bodies) in this view.</summary>
    public static string OwnerOfDigest(PlacementView view, string digest) =>
        RendezvousPlacement.Owners(view, Shards.OfDigest(Digest.Parse(digest)), 1)[0].NodeId;

    /// <summary>Polls <paramref name="condition"/> every 100 ms until it holds; fails with <paramref name="explain"/> after the timeout.</summary>
    public static async Task Eventually(TimeSpan timeout, Func<Task<bool>> condition, Func<string> explain, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        Exception? lastError = null;
        while (clock.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
            {
                lastError = e;
            }
            await Task.Delay(100, ct);
        }
        Assert.Fail($"not within {timeout.TotalSeconds:0} s: {explain()}{(lastError is null ? "" : $"\nlast error: {lastError.Message}")}");
    }

    /// <summary>Everything every process printed, for a failure message.</summary>
    public string Logs() =>
        string.Join("\n", silos.Select(s => $"---- silo {s.SiloEndpoint}\n{Tail(s.Process.Log)}")
            .Concat(gateways.Select(g => $"---- gateway {g.Host}\n{Tail(g.Log)}")));

    private static string Tail(string text) => text.Length <= 4000 ? text : "…" + text[^4000..];

    public async ValueTask DisposeAsync()
    {
        // Gateways first, then silos, all at once (each: SIGTERM, then SIGKILL after 10 s); Redis last, so that
        // leaving silos can still write their membership rows.
        await Task.WhenAll(gateways.Select(g => Task.Run(async () => await g.DisposeAsync())));
        await Task.WhenAll(silos.Select(s => Task.Run(async () => await s.Process.DisposeAsync())));
        await Redis.DisposeAsync();
        admin.Dispose();
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private sealed record AdminCluster(PlacementView View, List<AdminMember> Members);

    private sealed record AdminMember(string Address, string Endpoint, string Status);
}
