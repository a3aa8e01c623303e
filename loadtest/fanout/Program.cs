// Measures what fanning one blob write out to R byte nodes costs the gateway (docs/architecture.md, "Replication →
// Bytes"): the gateway's CPU seconds and wall time per write, R = 1 against R = 3, over gRPC to node processes of
// their own (so the gateway's CPU is its own), and in-process (nodes in the gateway's process, as the all-in-one).
//
//   dotnet run -c Release --project loadtest/fanout -- [sizeMiB=100] [runs=3]
//   (a node process is this program started as: node <dataDir>; it prints its address)
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Placement;
using Wharf.Gateway.Bytes;
using Wharf.Membership.Topology;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

if (args.Length >= 2 && args[0] == "node")
{
    await RunNodeAsync(args[1]);
    return;
}
var sizeMiB = args.Length > 0 ? int.Parse(args[0]) : 100;
var runs = args.Length > 1 ? int.Parse(args[1]) : 3;
var root = Directory.CreateTempSubdirectory("wharf-fanout-").FullName;
var nodes = new List<Process>();
try
{
    var payload = new byte[sizeMiB << 20];
    Random.Shared.NextBytes(payload);

    // Node processes: the silo's byte service on Kestrel with the silo's HTTP/2 windows.
    var endpoints = new List<string>();
    for (var i = 0; i < 3; i++)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }
        start.ArgumentList.Add("node");
        start.ArgumentList.Add(Path.Combine(root, $"grpc-{i}"));
        var p = Process.Start(start)!;
        nodes.Add(p);
        endpoints.Add((await p.StandardOutput.ReadLineAsync())!);
    }

    Console.WriteLine($"{sizeMiB} MiB per write, {runs} runs each; gateway CPU s / wall s (median)");
    foreach (var replicas in new[] { 1, 3 })
    {
        var view = new PlacementView(1, [.. endpoints.Select((e, i) => new PlacementNode($"n{i}", NodeState.Active, "", 1, e))], replicas, replicas == 1 ? 1 : 2);
        var feed = new TopologyFeed(new PlacementViewStore(null!, "bench"), NullLogger<TopologyFeed>.Instance);
        feed.Publish(view);
        using var router = new TopologyByteRouter(feed);
        Report($"grpc R={replicas}", await MeasureAsync(router, payload, runs));
    }

    foreach (var replicas in new[] { 1, 3 })
    {
        using var local = new InProcessRouter(Path.Combine(root, $"inproc-r{replicas}"), replicas);
        Report($"in-process R={replicas}", await MeasureAsync(local, payload, runs));
    }
}
finally
{
    foreach (var p in nodes)
    {
        p.Kill();
        p.WaitForExit();
    }
    Directory.Delete(root, recursive: true);
}

static void Report(string name, List<(double Cpu, double Wall)> samples)
{
    var cpu = samples.Select(s => s.Cpu).Order().ElementAt(samples.Count / 2);
    var wall = samples.Select(s => s.Wall).Order().ElementAt(samples.Count / 2);
    Console.WriteLine($"{name,-16} cpu {cpu:F3} s  wall {wall:F3} s  runs: {string.Join(", ", samples.Select(s => $"{s.Cpu:F3}/{s.Wall:F3}"))}");
}

static async Task<List<(double Cpu, double Wall)>> MeasureAsync(IByteRouter router, byte[] payload, int runs)
{
    var writer = new ReplicaWriter(router, new NodeHealth(), NullLogger<ReplicaWriter>.Instance);
    var samples = new List<(double, double)>();
    for (var run = 0; run <= runs; run++)
    {
        // A fresh blob each run (one changed byte) so no node deduplicates it; its hash is not part of the measure.
        payload[run] ^= 0x5a;
        var digest = Digest.Parse("sha256:" + Convert.ToHexStringLower(SHA256.HashData(payload)));
        GC.Collect();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var (_, holders) = await writer.WriteBlobAsync(digest, new MemoryStream(payload, writable: false), payload.Length, default);
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        if (holders.Length != router.Replicas)
        {
            throw new InvalidOperationException($"held by {holders.Length}");
        }
        if (run > 0) // The first run warms up JIT, connections and the disks' caches.
        {
            samples.Add((cpu, wall.Elapsed.TotalSeconds));
        }
    }
    return samples;
}

static async Task RunNodeAsync(string dir)
{
    Directory.CreateDirectory(dir);
    var records = RecordStore.Open(Path.Combine(dir, "db"));
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k =>
    {
        k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
        k.Limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
        k.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
        k.Limits.MaxRequestBodySize = null;
    });
    builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 8 * 1024 * 1024);
    builder.Services.AddSingleton(new BlobStore(records, dir));
    var app = builder.Build();
    app.MapGrpcService<ByteServiceEndpoint>();
    await app.StartAsync();
    Console.WriteLine(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    await app.WaitForShutdownAsync();
}

/// <summary>Three BlobStores in this process, as the all-in-one reaches its own node.</summary>
internal sealed class InProcessRouter : IByteRouter, IDisposable
{
    private readonly List<RecordStore> _records = [];
    private readonly Dictionary<string, IByteService> _nodes = [];
    private readonly PlacementView _view;

    public InProcessRouter(string dir, int replicas)
    {
        for (var i = 0; i < 3; i++)
        {
            var d = Path.Combine(dir, $"n{i}");
            var r = RecordStore.Open(Path.Combine(d, "db"));
            _records.Add(r);
            _nodes[$"n{i}"] = new BlobStore(r, d);
        }
        _view = new PlacementView(1, [.. _nodes.Keys.Select(n => new PlacementNode(n, NodeState.Active, "", 1, ""))], replicas, replicas == 1 ? 1 : 2);
    }

    public IReadOnlyList<string> OwnersOfDigest(Digest digest) => [.. RendezvousPlacement.Owners(_view, Shards.OfDigest(digest), _view.Replicas).Select(n => n.NodeId)];
    public IReadOnlyList<string> RankingOfDigest(Digest digest) => [.. RendezvousPlacement.Rank(_view.Nodes, Shards.OfDigest(digest)).Select(n => n.NodeId)];
    public IReadOnlyList<string> OwnersOfUpload(string uploadId) => [.. RendezvousPlacement.Owners(_view, Shards.OfUpload(uploadId), _view.Replicas).Select(n => n.NodeId)];
    public int WriteQuorum => _view.WriteQuorum;
    public int Replicas => _view.Replicas;
    public NodeState? StateOf(string nodeId) => _view.Find(nodeId)?.State;
    public IByteService Node(string nodeId) => _nodes[nodeId];

    public void Dispose()
    {
        foreach (var r in _records)
        {
            r.Dispose();
        }
    }
}
