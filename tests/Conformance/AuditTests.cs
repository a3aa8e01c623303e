using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Gateway.Audit;
using Wharf.Silo;
using Wharf.Silo.Maintenance;

namespace Wharf.Tests.Conformance;

/// <summary>
/// The audit log of an all-in-one in Basic mode: pushes, pulls, deletes and logins (good and bad) are recorded with
/// who, from where, what, when and the result, in the JSON-lines file and in the cluster, where they survive a
/// restart, are queried through the admin API, and are dropped after the retention.
/// </summary>
public sealed class AuditTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-audit-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string AuditFile => Path.Combine(_dir, "audit.jsonl");

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(Path.Combine(_dir, "htpasswd"), BasicAuthFixture.Htpasswd, Ct);
        _app = await StartAsync();
    }

    private async Task<WebApplication> StartAsync()
    {
        var app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(_dir, "data")}", "--Wharf:Auth:Mode=Basic",
             $"--Wharf:Auth:Htpasswd={Path.Combine(_dir, "htpasswd")}", $"--Wharf:Audit:File={AuditFile}",
             // A stored administrator (and so policies: the "everyone may do everything" default is off once one exists).
             "--Wharf:Auth:Bootstrap:User=root", "--Wharf:Auth:Bootstrap:Password=root-Pass-123",
             "--Wharf:Auth:Policies:0:Subjects:0=alice", "--Wharf:Auth:Policies:0:Repositories:0=**", "--Wharf:Auth:Policies:0:Actions:0=*"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await app.StartAsync(Ct);
        return app;
    }

    private HttpClient Client(string? user = null, string? password = null)
    {
        var http = new HttpClient { BaseAddress = new Uri(_app!.Urls.Single().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if (user is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        return http;
    }

    private async Task<JsonArray> QueryAsync(string query)
    {
        await _app!.Services.GetRequiredService<AuditLog>().FlushAsync(Ct);
        using var http = Client("root", "root-Pass-123");
        var response = await http.GetAsync("admin/audit?" + query, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["events"]!.AsArray();
    }

    [Fact]
    public async Task Pushes_pulls_deletes_and_logins_are_recorded_kept_across_a_restart_and_dropped_after_the_retention()
    {
        var alice = new RegistryClient(Client("alice", "s3cret-Pass"));
        var name = RegistryClient.UniqueName("audit");
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("v2/")).StatusCode);
        var image = await alice.PushImageAsync(name, "v1");
        // Five pulls in a row: counted in one event (PullTally), or two if a write fell between them.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync($"v2/{name}/manifests/v1", RegistryClient.OciManifest)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.Accepted, (await alice.DeleteAsync($"v2/{name}/manifests/v1")).StatusCode);
        using (var intruder = Client("alice", "wrong-password"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await intruder.GetAsync($"v2/{name}/tags/list", Ct)).StatusCode);
        }

        var mine = await QueryAsync($"repository={Uri.EscapeDataString(name)}");
        var actions = mine.Select(e => (string)e!["action"]! + " " + (int)e["status"]!).ToList();
        Assert.Contains("manifest.push 201", actions);
        Assert.Contains("manifest.pull 200", actions);
        var pulls = mine.Where(e => (string)e!["action"]! == "manifest.pull").ToList();
        Assert.Equal(5, pulls.Sum(e => (int?)e!["count"] ?? 1));
        Assert.True(pulls.Count < 5, $"5 pulls by one client were recorded as {pulls.Count} events; expected them counted in fewer");
        Assert.Contains("tag.delete 202", actions);
        Assert.Contains(actions, a => a.StartsWith("blob.push 201", StringComparison.Ordinal));
        var push = mine.First(e => (string)e!["action"]! == "manifest.push")!;
        Assert.Equal("alice", (string)push["identity"]!);
        Assert.Equal("127.0.0.1", (string)push["address"]!);
        Assert.Equal("ok", (string)push["result"]!);
        Assert.Equal(image.Digest, (string)push["digest"]!);
        Assert.Equal("v1", (string)push["reference"]!);
        Assert.InRange(DateTimeOffset.Parse((string)push["time"]!, System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow);
        var failed = mine.Single(e => (string)e!["action"]! == "login" && (string)e["result"]! == "denied")!;
        Assert.Equal("alice", (string)failed["identity"]!);
        Assert.Equal(401, (int)failed["status"]!);
        Assert.Contains(await QueryAsync("identity=alice&action=login"), e => (int)e!["status"]! == 200);

        // The JSON-lines file holds the same events, and never a password.
        var lines = await File.ReadAllLinesAsync(AuditFile, Ct);
        Assert.Contains(lines, l => l.Contains("\"manifest.push\"", StringComparison.Ordinal) && l.Contains(name, StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("s3cret-Pass", StringComparison.Ordinal) || l.Contains("wrong-password", StringComparison.Ordinal));

        // Bad queries are 400s; the events outlive a restart of the process.
        using (var http = Client())
        {
            Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("admin/audit?from=yesterday", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("admin/audit?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("admin/audit?limit=0", Ct)).StatusCode);
        }
        await _app!.StopAsync(Ct);
        await _app.DisposeAsync();
        _app = await StartAsync();
        Assert.Equal(mine.Count, (await QueryAsync($"repository={Uri.EscapeDataString(name)}")).Count);

        // Past the retention the hours are dropped on their owners.
        var dropped = await _app.Services.GetRequiredService<AuditJanitor>().SweepAsync(DateTimeOffset.UtcNow.AddHours(2), Ct);
        Assert.True(dropped >= 1);
        Assert.Empty(await QueryAsync($"repository={Uri.EscapeDataString(name)}"));
    }

    [Fact]
    public async Task Admin_changes_are_recorded_and_only_an_administrator_reads_the_log_through_any_gateway()
    {
        using var root = Client("root", "root-Pass-123");
        var created = await root.PostAsync("admin/v1/users", new StringContent("""{"name":"dave","password":"dave-Pass-123"}""", Encoding.UTF8, "application/json"), Ct);
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync(Ct));
        using (var alice = Client("alice", "s3cret-Pass"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await alice.GetAsync("admin/v1/audit", Ct)).StatusCode);
        }
        using (var anonymous = Client())
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("admin/v1/audit", Ct)).StatusCode);
        }
        await _app!.Services.GetRequiredService<AuditLog>().FlushAsync(Ct);
        var response = await root.GetAsync("admin/v1/audit?identity=root&action=admin.change", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["events"]!.AsArray();
        var change = Assert.Single(events)!;
        Assert.Equal("POST /admin/v1/users", (string)change["detail"]!);
        Assert.Equal("ok", (string)change["result"]!);
        Assert.DoesNotContain("dave-Pass-123", await File.ReadAllTextAsync(AuditFile, Ct));
        Assert.Contains(await QueryAsync("identity=alice&action=admin.audit.read"), e => (int)e!["status"]! == 403);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        RunningRegistry.DeleteFolder(_dir);
    }
}
