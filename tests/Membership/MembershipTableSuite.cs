using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Messaging;
using Orleans.Runtime;
using Wharf.Membership;

namespace Wharf.Tests.Membership;

/// <summary>
/// ONE suite for Orleans' membership contract (<see cref="IMembershipTable"/> and <see cref="IGatewayListProvider"/>),
/// in the manner of Orleans' <c>MembershipTableTestsBase</c>, run against every backend Wharf supports. The table and
/// the gateway list come from <see cref="MembershipSetup"/> exactly as a silo and a gateway host get them. Each test
/// has a cluster id of its own, so tests of one class share one backend without seeing each other.
/// </summary>
public abstract class MembershipTableSuite<TBackend>(TBackend backend) : IClassFixture<TBackend>, IAsyncLifetime
    where TBackend : class, IMembershipBackend
{
    private static int s_generation = Environment.TickCount & 0xFFFFF;
    private readonly string _clusterId = "test-" + Guid.NewGuid().ToString("N")[..12];
    private IHost _siloHost = null!;
    private IHost _clientHost = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected IMembershipTable Table { get; private set; } = null!;

    protected IGatewayListProvider Gateways { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var silo = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        silo.UseOrleans(s => MembershipSetup.ConfigureSilo(s, backend.Options, _clusterId, RedisServer.FreePort(), RedisServer.FreePort()));
        _siloHost = silo.Build();
        Table = _siloHost.Services.GetRequiredService<IMembershipTable>();
        await Table.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);

        var client = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        client.UseOrleansClient(c => MembershipSetup.ConfigureClient(c, backend.Options, _clusterId));
        _clientHost = client.Build();
        Gateways = _clientHost.Services.GetRequiredService<IGatewayListProvider>();
        await Gateways.InitializeGatewayListProviderAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await Table.DeleteMembershipTableEntriesAsync(_clusterId, CancellationToken.None);
        _clientHost.Dispose();
        _siloHost.Dispose();
    }

    [Fact(Timeout = 20000)]
    public async Task The_table_and_gateway_list_are_the_configured_backends()
    {
        await Task.Yield();
        Assert.Contains(backend.Options.Provider, Table.GetType().Name);
        Assert.Contains(backend.Options.Provider, Gateways.GetType().Name);
    }

    [Fact(Timeout = 20000)]
    public async Task Init_on_an_empty_table_reads_no_rows_at_version_0()
    {
        var data = await Table.ReadAllAsync(Ct);

        Assert.Empty(data.Members);
        Assert.Equal(0, data.Version.Version);
        Assert.NotNull(data.Version.VersionEtag);
    }

    [Fact(Timeout = 20000)]
    public async Task Inserted_row_reads_back_with_its_fields_and_the_next_version()
    {
        var entry = NewEntry(SiloStatus.Joining);
        entry.SuspectTimes = [Tuple.Create(NewEntry(SiloStatus.Active).SiloAddress, Seconds(DateTime.UtcNow))];

        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));

        var data = await Table.ReadAllAsync(Ct);
        Assert.Equal(1, data.Version.Version);
        var (read, etag) = Assert.Single(data.Members);
        Assert.NotNull(etag);
        Assert.Equal(entry.SiloAddress, read.SiloAddress);
        Assert.Equal(entry.HostName, read.HostName);
        Assert.Equal(entry.SiloName, read.SiloName);
        Assert.Equal(entry.Status, read.Status);
        Assert.Equal(entry.ProxyPort, read.ProxyPort);
        Assert.Equal(entry.StartTime, read.StartTime.ToUniversalTime());
        var suspect = Assert.Single(read.SuspectTimes!);
        Assert.Equal(entry.SuspectTimes[0].Item1, suspect.Item1);
        Assert.Equal(entry.SuspectTimes[0].Item2, suspect.Item2.ToUniversalTime());
    }

    [Fact(Timeout = 20000)]
    public async Task Read_all_returns_every_row()
    {
        var entries = new[] { NewEntry(SiloStatus.Active), NewEntry(SiloStatus.Joining), NewEntry(SiloStatus.Dead) };
        foreach (var entry in entries)
        {
            Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var data = await Table.ReadAllAsync(Ct);

        Assert.Equal(3, data.Version.Version);
        Assert.Equal(entries.Select(e => e.SiloAddress).Order(), data.Members.Select(m => m.Item1.SiloAddress).Order());
    }

    [Fact(Timeout = 20000)]
    public async Task Inserting_an_existing_row_is_refused()
    {
        var entry = NewEntry(SiloStatus.Joining);
        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));

        Assert.False(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));

        var data = await Table.ReadAllAsync(Ct);
        Assert.Single(data.Members);
        Assert.Equal(1, data.Version.Version);
    }

    [Fact(Timeout = 20000)]
    public async Task Two_writers_race_on_one_row_with_the_same_etag_and_exactly_one_wins()
    {
        var entry = NewEntry(SiloStatus.Joining);
        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var data = await Table.ReadAllAsync(Ct);
        var (row, etag) = data.Members[0];

        var writers = Enumerable.Range(0, 8).Select(i =>
        {
            var changed = Copy(row);
            changed.Status = i % 2 == 0 ? SiloStatus.Active : SiloStatus.ShuttingDown;
            return Table.UpdateRowAsync(changed, etag, data.Version.Next(), Ct);
        });
        var outcomes = await Task.WhenAll(writers);

        Assert.Single(outcomes, won => won);
        var after = await Table.ReadAllAsync(Ct);
        Assert.Equal(2, after.Version.Version);
        Assert.Contains(after.Members[0].Item1.Status, new[] { SiloStatus.Active, SiloStatus.ShuttingDown });
    }

    [Fact(Timeout = 20000)]
    public async Task Writers_that_retry_on_conflict_all_land_and_the_version_counts_them()
    {
        var entry = NewEntry(SiloStatus.Joining);
        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));

        await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            while (true)
            {
                var data = await Table.ReadAllAsync(Ct);
                var (row, etag) = data.Members[0];
                if (await Table.UpdateRowAsync(row, etag, data.Version.Next(), Ct))
                {
                    return;
                }
                await Task.Delay(Random.Shared.Next(1, 10));
            }
        }));

        Assert.Equal(7, (await Table.ReadAllAsync(Ct)).Version.Version);
    }

    [Fact(Timeout = 20000)]
    public async Task The_table_version_only_moves_forward_and_a_stale_version_is_refused()
    {
        var first = NewEntry(SiloStatus.Joining);
        var start = (await Table.ReadAllAsync(Ct)).Version;
        Assert.True(await Table.InsertRowAsync(first, start.Next(), Ct));

        // Another row written against the version read before the first insert: stale, refused.
        Assert.False(await Table.InsertRowAsync(NewEntry(SiloStatus.Joining), start.Next(), Ct));

        var data = await Table.ReadAllAsync(Ct);
        var (row, etag) = data.Members[0];
        Assert.False(await Table.UpdateRowAsync(row, etag, start.Next(), Ct));
        Assert.Equal(1, (await Table.ReadAllAsync(Ct)).Version.Version);

        Assert.True(await Table.UpdateRowAsync(row, etag, data.Version.Next(), Ct));
        var after = await Table.ReadAllAsync(Ct);
        Assert.Equal(2, after.Version.Version);
        Assert.NotEqual(data.Version.VersionEtag, after.Version.VersionEtag);

        // The same update again, with the etags it already consumed: refused, nothing moves.
        Assert.False(await Table.UpdateRowAsync(row, etag, data.Version.Next(), Ct));
        Assert.Equal(2, (await Table.ReadAllAsync(Ct)).Version.Version);
    }

    [Fact(Timeout = 20000)]
    public async Task UpdateIAmAlive_changes_only_the_alive_time()
    {
        var entry = NewEntry(SiloStatus.Active);
        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var before = await Table.ReadAllAsync(Ct);
        var alive = DateTime.UtcNow.AddSeconds(30);

        // As Orleans' runtime calls it: only the address and the time are set.
        await Table.UpdateIAmAliveAsync(new MembershipEntry { SiloAddress = entry.SiloAddress, IAmAliveTime = alive }, Ct);

        var after = await Table.ReadAllAsync(Ct);
        var (row, etag) = Assert.Single(after.Members);
        Assert.True((row.IAmAliveTime.ToUniversalTime() - alive).Duration() < TimeSpan.FromMilliseconds(50));
        Assert.Equal(before.Members[0].Item2, etag);
        Assert.Equal(before.Version.Version, after.Version.Version);
        Assert.Equal(before.Version.VersionEtag, after.Version.VersionEtag);
        Assert.Equal(entry.Status, row.Status);
        Assert.Equal(entry.HostName, row.HostName);
        Assert.Equal(entry.ProxyPort, row.ProxyPort);
        Assert.Equal(entry.StartTime, row.StartTime.ToUniversalTime());
    }

    [Fact(Timeout = 20000)]
    public async Task A_silo_row_marked_dead_reads_back_dead()
    {
        var entry = NewEntry(SiloStatus.Active);
        Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var data = await Table.ReadAllAsync(Ct);
        var (row, etag) = data.Members[0];
        row.Status = SiloStatus.Dead;

        Assert.True(await Table.UpdateRowAsync(row, etag, data.Version.Next(), Ct));

        Assert.Equal(SiloStatus.Dead, Assert.Single((await Table.ReadAllAsync(Ct)).Members).Item1.Status);
        Assert.Empty(await Gateways.GetGatewaysAsync(Ct));
    }

    [Fact(Timeout = 20000)]
    public async Task Cleanup_removes_dead_rows_older_than_the_date_and_keeps_the_rest()
    {
        var old = DateTime.UtcNow.AddHours(-2);
        var deadAndOld = NewEntry(SiloStatus.Dead, startTime: old, aliveTime: old);
        var activeAndOld = NewEntry(SiloStatus.Active, startTime: old, aliveTime: old);
        var deadAndRecent = NewEntry(SiloStatus.Dead);
        foreach (var entry in new[] { deadAndOld, activeAndOld, deadAndRecent })
        {
            Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        await Table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddHours(-1), Ct);

        var left = (await Table.ReadAllAsync(Ct)).Members.Select(m => m.Item1.SiloAddress).Order().ToList();
        Assert.Equal(new[] { activeAndOld.SiloAddress, deadAndRecent.SiloAddress }.Order(), left);
    }

    [Fact(Timeout = 20000)]
    public async Task Gateway_list_has_the_gateway_endpoints_of_active_silos_only()
    {
        var active = NewEntry(SiloStatus.Active);
        var activeWithoutGateway = NewEntry(SiloStatus.Active);
        activeWithoutGateway.ProxyPort = 0;
        var joining = NewEntry(SiloStatus.Joining);
        var dead = NewEntry(SiloStatus.Dead);
        var second = NewEntry(SiloStatus.Active);
        foreach (var entry in new[] { active, activeWithoutGateway, joining, dead, second })
        {
            Assert.True(await Table.InsertRowAsync(entry, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var gateways = (await Gateways.GetGatewaysAsync(Ct)).Select(u => u.ToString()).Order().ToList();

        var expected = new[] { active, second }
            .Select(e => SiloAddress.New(e.SiloAddress.Endpoint.Address, e.ProxyPort, e.SiloAddress.Generation).ToGatewayUri().ToString())
            .Order();
        Assert.Equal(expected, gateways);
    }

    [Fact(Timeout = 20000)]
    public async Task Deleting_the_table_removes_every_row()
    {
        Assert.True(await Table.InsertRowAsync(NewEntry(SiloStatus.Active), (await Table.ReadAllAsync(Ct)).Version.Next(), Ct));

        await Table.DeleteMembershipTableEntriesAsync(_clusterId, Ct);
        await Table.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);

        var data = await Table.ReadAllAsync(Ct);
        Assert.Empty(data.Members);
        Assert.Equal(0, data.Version.Version);
    }

    [Fact(Timeout = 20000)]
    public async Task A_real_silo_joins_and_a_silo_that_stops_answering_is_declared_dead()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var silo = RealSilo();
        await silo.StartAsync(Ct);
        var self = await WaitForAsync(d => d.Members.Any(m => m.Item1.Status == SiloStatus.Active), "the silo to become Active");
        var joined = clock.Elapsed;

        // A row that says Active for an address where nothing answers: a silo that crashed without a word.
        var gone = NewEntry(SiloStatus.Active);
        gone.SiloAddress = SiloAddress.New(IPAddress.Loopback, RedisServer.FreePort(), gone.SiloAddress.Generation);
        while (!await Table.InsertRowAsync(gone, (await Table.ReadAllAsync(Ct)).Version.Next(), Ct))
        {
        }
        clock.Restart();
        await WaitForAsync(d => d.TryGet(gone.SiloAddress)?.Item1.Status == SiloStatus.Dead, "the silent silo to be declared dead");
        var declaredDead = clock.Elapsed;

        await silo.StopAsync(Ct);
        var left = (await Table.ReadAllAsync(Ct)).Members.Single(m => m.Item1.SiloAddress.Endpoint.Port != gone.SiloAddress.Endpoint.Port);
        Assert.Equal(SiloStatus.Dead, left.Item1.Status);
        TestContext.Current.TestOutputHelper?.WriteLine($"{typeof(TBackend).Name}: joined in {joined.TotalSeconds:0.0} s, silent silo declared dead in {declaredDead.TotalSeconds:0.0} s");
        Assert.NotNull(self);
    }

    // Liveness settings for a test: probe every second, two missed probes suspect, one vote suffices (one live silo).
    private IHost RealSilo()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.UseOrleans(s =>
        {
            MembershipSetup.ConfigureSilo(s, backend.Options, _clusterId, RedisServer.FreePort(), RedisServer.FreePort());
            s.Configure<Orleans.Configuration.EndpointOptions>(e => e.AdvertisedIPAddress = IPAddress.Loopback);
            s.Configure<Orleans.Configuration.ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = TimeSpan.FromSeconds(1);
                m.NumMissedProbesLimit = 2;
                m.NumVotesForDeathDeclaration = 1;
                m.TableRefreshTimeout = TimeSpan.FromSeconds(1);
                m.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
            });
        });
        return builder.Build();
    }

    private async Task<MembershipTableData> WaitForAsync(Func<MembershipTableData, bool> condition, string what)
    {
        while (true)
        {
            var data = await Table.ReadAllAsync(Ct);
            if (condition(data))
            {
                return data;
            }
            if (Ct.IsCancellationRequested)
            {
                Assert.Fail($"timed out waiting for {what}: {data}");
            }
            await Task.Delay(100, Ct);
        }
    }

    private static MembershipEntry NewEntry(SiloStatus status, DateTime? startTime = null, DateTime? aliveTime = null)
    {
        var generation = Interlocked.Increment(ref s_generation);
        var silo = SiloAddress.New(IPAddress.Loopback, 11000 + generation % 1000, generation);
        return new MembershipEntry
        {
            SiloAddress = silo,
            HostName = "host-" + generation,
            SiloName = "silo-" + generation,
            RoleName = "",
            Status = status,
            ProxyPort = 31000 + generation % 1000,
            StartTime = Seconds(startTime ?? DateTime.UtcNow),
            IAmAliveTime = Seconds(aliveTime ?? DateTime.UtcNow),
        };
    }

    private static MembershipEntry Copy(MembershipEntry e) => new()
    {
        SiloAddress = e.SiloAddress,
        HostName = e.HostName,
        SiloName = e.SiloName,
        RoleName = e.RoleName,
        Status = e.Status,
        ProxyPort = e.ProxyPort,
        StartTime = e.StartTime,
        IAmAliveTime = e.IAmAliveTime,
        SuspectTimes = e.SuspectTimes,
    };

    // Backends keep times at their own precision; whole seconds compare exactly everywhere.
    private static DateTime Seconds(DateTime t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
}

public sealed class ConsulPeerMembershipTableTests(ConsulPeerBackend backend) : MembershipTableSuite<ConsulPeerBackend>(backend);

public sealed class RedisMembershipTableTests(RedisBackend backend) : MembershipTableSuite<RedisBackend>(backend);
