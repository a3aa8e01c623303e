using System.Diagnostics;
using System.Globalization;
using Wharf.Contracts.Placement;
using Wharf.PlacementSim;

// Placement at scale, simulated: no I/O besides printing, deterministic (fixed seed, every hash is).
//   dotnet run -c Release --project tools/PlacementSim -- [--nodes 100,1000] [--keys 1000000] [--seed 42] [--verify 128] [--movers 16]
// Prints markdown tables: balance of shards, keys and bytes; what one join and one leave move; zone spread;
// weighted shares. See docs/architecture.md "Placement at scale (simulation)".
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
const int R = 3;
var nodeCounts = new[] { 100, 1000 };
var keys = 1_000_000;
var seed = 42;
var verify = 128;
var movers = 16;
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--nodes": nodeCounts = args[i + 1].Split(',').Select(int.Parse).ToArray(); break;
        case "--keys": keys = int.Parse(args[i + 1]); break;
        case "--seed": seed = int.Parse(args[i + 1]); break;
        case "--verify": verify = int.Parse(args[i + 1]); break;
        case "--movers": movers = int.Parse(args[i + 1]); break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

var clock = Stopwatch.StartNew();
var work = Workload.Create(keys, seed);
var sorted = work.Sizes.Order().ToArray();
var top1 = sorted[^(sorted.Length / 100)..].Sum() / (double)work.TotalBytes;
Console.WriteLine($"# Placement simulation: R = {R}, {Shards.Count:N0} shards, {keys:N0} blob keys (seed {seed})");
Console.WriteLine();
Console.WriteLine($"Blob sizes log-normal, median {Workload.MedianBytes / 1048576:0} MiB, σ = {Workload.Sigma}, capped at {Workload.MaxBytes >> 30} GiB: " +
    $"total {work.TotalBytes / 1e12:F2} TB, mean {Mib(work.TotalBytes / (double)keys)}, p50 {Mib(sorted[keys / 2])}, " +
    $"p99 {Mib(sorted[keys * 99 / 100])}, max {Mib(sorted[^1])}; the largest 1 % of keys hold {top1:P0} of the bytes. " +
    $"Machine: {Environment.ProcessorCount} cores. Workload built in {clock.Elapsed.TotalSeconds:F1} s.");

var failed = false;
foreach (var n in nodeCounts)
{
    clock.Restart();
    var layouts = Layout.All(n, movers).ToList();
    var outcome = Simulation.Run(layouts, work, R, verify);
    Console.WriteLine();
    Console.WriteLine($"## N = {n:N0} silos ({clock.Elapsed.TotalSeconds:F1} s: {Shards.Count:N0} shards × {layouts[0].Count:N0} nodes " +
        $"({n:N0} + {Layout.Spares} spares that join) hashed once; {layouts.Count} layouts, {layouts.Sum(l => l.Changes.Sum(c => c.Movers.Length))} single joins and leaves)");
    Console.WriteLine();
    Console.WriteLine($"Owners checked against RendezvousPlacement.Owners on {outcome.Checked} shards × {outcome.Views} views: " +
        (outcome.Mismatches.Count == 0 ? "identical." : $"{outcome.Mismatches.Count} MISMATCHES"));
    foreach (var m in outcome.Mismatches.Take(10))
    {
        Console.WriteLine("    " + m);
    }
    failed |= outcome.Mismatches.Count > 0;
    Reports.Balance(layouts, outcome.Results, work, R);
    Reports.Weights(layouts, outcome.Results, R);
    Reports.Moves(layouts, outcome.Results, work, R);
    Reports.Spread(layouts, outcome.Results, R);
}
return failed ? 1 : 0;

static string Mib(double bytes) => bytes >= 1 << 30 ? $"{bytes / (1 << 30):F1} GiB" : $"{bytes / (1 << 20):F1} MiB";
