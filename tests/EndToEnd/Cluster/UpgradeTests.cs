using System.Diagnostics;
using System.Security.Cryptography;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// Versions N and N+1 side by side (DESIGN principle 11): a cluster with one silo of the previous landed version
/// (<see cref="PreviousVersion"/>, built from this repository's history) and two of this build, R = 3, W = 2, behind a
/// gateway of this build. Writes go to old and new owners alike, a quorum of one old and one new silo serves alone,
/// and the old silo is then upgraded in place on its own data: every image written before, during and after pulls
/// back byte-identical and the old silo held every blob.
/// </summary>
public sealed class UpgradeTests
{
    [Fact(Timeout = 600_000)]
    public async Task A_previous_version_silo_serves_beside_new_ones_and_is_upgraded_in_place_without_losing_a_write()
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = Stopwatch.StartNew();
        var previous = await PreviousVersion.SiloAssemblyAsync(ct);
        var built = clock.Elapsed;
        await using var cluster = await ClusterProcesses.StartAsync(3, 1, ct, replicas: 3, siloAssemblies: [previous]);
        using var gateways = new GatewayClients(cluster);
        var (old, fresh) = (cluster.Silos[0], cluster.Silos[1]);

        // All three owners up: every write reaches the old silo too.
        var before = new List<RawImage>();
        for (var i = 0; i < 3; i++)
        {
            var image = ReplicationTests.RandomImage("e2e/upgrade/app", $"before{i}");
            await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, image, chunked: i % 2 == 1, i), ct);
            before.Add(image);
        }

        // One new silo away: the old silo and the other new one are the only quorum, for writes and reads.
        await fresh.Process.StopAsync(TimeSpan.FromSeconds(30));
        await ClusterProcesses.Eventually(TimeSpan.FromSeconds(30), async () =>
            !(await cluster.StateAsync(old, ct)).IsActive(fresh.SiloEndpoint),
            () => $"{fresh.SiloEndpoint} is still Active after SIGTERM\n{cluster.Logs()}", ct);
        var during = new List<RawImage>();
        for (var i = 0; i < 3; i++)
        {
            var image = ReplicationTests.RandomImage("e2e/upgrade/app", $"during{i}");
            await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, image, chunked: i % 2 == 0, i), ct);
            during.Add(image);
        }
        foreach (var image in before.Concat(during))
        {
            await RawOci.AssertServedAsync(gateways.All[0], image);
        }
        await fresh.Process.StartAgainAsync(ct);

        // The old silo held every blob written while it was an owner: it took part in every write.
        foreach (var (digest, bytes) in before.Concat(during).SelectMany(i => i.Blobs).Where(b => b.Bytes.Length > 32 << 10))
        {
            var path = Path.Combine(old.Process.DataPath, "blobs", "sha256", digest[7..9], digest[7..]);
            Assert.True(File.Exists(path), $"{digest} is not on the previous-version silo ({path})");
            Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(path, ct))));
        }

        // Upgrade in place: the old silo stops and starts as this build on its own data folder.
        await old.Process.StopAsync(TimeSpan.FromSeconds(30));
        await old.Process.StartAgainAsync(ct, RegistryProcess.SiloAssemblyPath);
        await cluster.WaitUntilFormedAsync(TimeSpan.FromSeconds(60), ct);
        var after = ReplicationTests.RandomImage("e2e/upgrade/app", "after");
        await ReplicationTests.WithRetriesAsync(() => ReplicationTests.PushAsync(gateways.All, after, chunked: true, 0), ct);
        foreach (var image in before.Concat(during).Append(after))
        {
            await RawOci.AssertServedAsync(gateways.All[0], image);
        }
        TestContext.Current.SendDiagnosticMessage(
            $"upgrade: previous version {PreviousVersion.Commit[..12]} ready in {built.TotalSeconds:0} s (built or reused); whole test {clock.Elapsed.TotalSeconds:0} s");
    }
}
