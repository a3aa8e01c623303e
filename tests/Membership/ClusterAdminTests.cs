using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;
using Wharf.Cli;
using Wharf.Contracts.Placement;
using Wharf.Membership;
using Wharf.Membership.Topology;
using Wharf.Silo.Admin;

namespace Wharf.Tests.Membership;

/// <summary>
/// The silo's admin API for view edits on real Kestrel over a real redis-server, driven by the operator CLI
/// in-process: what an operator types and what comes back.
/// </summary>
public sealed class ClusterAdminTests(RedisBackend backend) : IClassFixture<RedisBackend>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(int Code, string Out, string Error)> CliAsync(string admin, params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        var code = await WharfCli.RunAsync([.. args, "--admin", admin, "--timeout", "20"], console, errors, Ct);
        return (code, output.ToString().Trim(), errors.ToString().Trim());
    }

    [Fact(Timeout = 60000)]
    public async Task Drain_forget_and_replication_answer_as_the_view_allows()
    {
        var cluster = "c" + Guid.NewGuid().ToString("N")[..8];
        var store = TopologySetup.CreateCasStore(backend.Options, cluster);
        var views = new PlacementViewStore(store, cluster);
        await views.UpdateAsync(_ => new PlacementView(0,
        [
            new PlacementNode("node-a", NodeState.Active, "", 1, "http://a:1"),
            new PlacementNode("node-b", NodeState.Active, "", 1, "http://b:1"),
            new PlacementNode("node-c", NodeState.Active, "", 1, "http://c:1"),
            new PlacementNode("node-d", NodeState.Down, "", 1, "http://d:1", DateTimeOffset.UtcNow),
        ], 2, 2), Ct);
        await new NodeLease(store, cluster, "node-a", TimeSpan.FromMinutes(1)).AcquireAsync(Ct);

        var port = RedisServer.FreePort();
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddSingleton(new TransitionReports(store, cluster));
        await using var app = builder.Build();
        var feed = new TopologyFeed(views, NullLogger<TopologyFeed>.Instance);
        app.MapClusterAdmin(store, views, feed, cluster);
        await app.StartAsync(Ct);
        var admin = $"http://127.0.0.1:{port}";

        var drain = await CliAsync(admin, "node", "drain", "node-c");
        Assert.Equal(0, drain.Code);
        Assert.Contains("node node-c is Draining", drain.Out);
        var view = await views.ReadAsync(Ct);
        Assert.Equal(NodeState.Draining, view.Find("node-c")!.State);
        Assert.True(view.InTransition);
        Assert.Equal(view.Epoch, feed.Current.Epoch);

        var busy = await CliAsync(admin, "node", "drain", "node-b");
        Assert.Equal(1, busy.Code);
        Assert.Contains("TRANSITION_IN_PROGRESS, 409", busy.Error);
        Assert.Single(busy.Error.Split('\n'));

        var unknown = await CliAsync(admin, "node", "forget", "node-zz");
        Assert.Equal(1, unknown.Code);
        Assert.Contains("UNKNOWN_NODE, 404", unknown.Error);

        var alive = await CliAsync(admin, "node", "forget", "node-a");
        Assert.Equal(1, alive.Code);
        Assert.Contains("drain it instead", alive.Error);

        var invalid = await CliAsync(admin, "replication", "set", "--replicas", "3", "--write-quorum", "1");
        Assert.Equal(1, invalid.Code);
        Assert.Contains("INVALID_REPLICATION, 400", invalid.Error);

        using (var http = new HttpClient { BaseAddress = new Uri(admin) })
        {
            using var response = await http.PutAsync("admin/replication", new StringContent("{not json", Encoding.UTF8, "application/json"), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
            Assert.Equal("INVALID_REPLICATION", body.RootElement.GetProperty("error").GetString());
            Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("message").GetString()));
        }

        // The transition ends (the coordinator would, once the gainers synced): now the dead node can be forgotten.
        await views.UpdateAsync(v => v with { Previous = null }, Ct);
        var forget = await CliAsync(admin, "node", "forget", "node-d");
        Assert.Equal(0, forget.Code);
        Assert.Contains("node node-d is Removed", forget.Out);
        Assert.Equal(NodeState.Removed, (await views.ReadAsync(Ct)).Find("node-d")!.State);

        // Two nodes own data now (a, b): R = 3 is refused, W alone may change once the transition has ended.
        await views.UpdateAsync(v => v with { Previous = null }, Ct);
        var tooMany = await CliAsync(admin, "replication", "set", "--replicas", "3", "--write-quorum", "2");
        Assert.Contains("TOO_FEW_OWNERS, 409", tooMany.Error);
        var set = await CliAsync(admin, "replication", "set", "--replicas", "1", "--write-quorum", "1");
        Assert.Equal(0, set.Code);
        Assert.Contains("R = 1, W = 1", set.Out);
        view = await views.ReadAsync(Ct);
        Assert.Equal((1, 1), (view.Replicas, view.WriteQuorum));

        var missing = await CliAsync(admin, "replication", "set", "--replicas", "1");
        Assert.Equal(2, missing.Code);
        await app.StopAsync(Ct);
    }
}
