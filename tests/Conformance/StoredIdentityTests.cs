using System.Diagnostics;
using CsCheck;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>
/// An all-in-one in Token mode with the htpasswd users alice and bob (no policy in configuration) and the bootstrap
/// administrator root, whose users, robots, teams and policies live in the cluster (docs/security.md "Stored identities").
/// </summary>
public sealed class StoredIdentityFixture : IAsyncLifetime
{
    public const string RootPassword = "root-Pass-1234";

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-ident-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public Uri Address { get; private set; } = null!;

    public IServiceProvider Services => _app!.Services;

    public static string[] Arguments(string dir, string mode = "Token", bool bootstrap = true)
    {
        var htpasswd = Path.Combine(dir, "htpasswd");
        List<string> args = ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(dir, "data")}", "--Wharf:Gateway:TagLeaseSeconds=1",
            $"--Wharf:Auth:Mode={mode}", $"--Wharf:Auth:Htpasswd={htpasswd}"];
        if (bootstrap)
        {
            args.AddRange(["--Wharf:Auth:Bootstrap:User=root", $"--Wharf:Auth:Bootstrap:Password={RootPassword}"]);
        }
        return [.. args];
    }

    public static async Task<WebApplication> StartAsync(string dir, string[] args)
    {
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "htpasswd"), BasicAuthFixture.Htpasswd);
        var app = AllInOne.Build(args, b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await app.StartAsync();
        return app;
    }

    public async ValueTask InitializeAsync()
    {
        _app = await StartAsync(_dir, Arguments(_dir));
        Address = new Uri(_app.Urls.Single().TrimEnd('/') + "/");
    }

    /// <summary>A plain client sending Basic credentials (or none) on every request: what the admin API takes.</summary>
    public HttpClient Basic(string? user, string? password) => BasicClient(Address, user, password);

    public static HttpClient BasicClient(Uri address, string? user, string? password)
    {
        var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        if (user is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        return http;
    }

    /// <summary>A registry client going through the token flow as a client does.</summary>
    public HttpClient Registry(string? user, string? password) =>
        new(new TokenFlowHandler(user, password)) { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };

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

public sealed class StoredIdentityTests(StoredIdentityFixture registry) : IClassFixture<StoredIdentityFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Root() => registry.Basic("root", StoredIdentityFixture.RootPassword);

    private static string Unique(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..8]}";

    private static async Task<JsonNode> OkAsync(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"{response.RequestMessage!.Method} {response.RequestMessage.RequestUri} answered {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!;
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string error)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(error, JsonNode.Parse(text)!["error"]!.GetValue<string>());
    }

    private async Task<string> TokenAsync(string user, string password, string scope)
    {
        using var http = registry.Basic(user, password);
        using var response = await http.GetAsync($"/auth/token?service=wharf-registry&scope={Uri.EscapeDataString(scope)}", Ct);
        return (await OkAsync(response))["token"]!.GetValue<string>();
    }

    private async Task<string> CreateRobotAsync(string name, object? extra = null)
    {
        using var root = Root();
        var body = new JsonObject { ["name"] = name };
        if (extra is not null)
        {
            foreach (var (k, v) in JsonSerializer.SerializeToNode(extra)!.AsObject())
            {
                body[k] = v?.DeepClone();
            }
        }
        using var response = await root.PostAsJsonAsync("/admin/v1/robots", body, Ct);
        var created = await OkAsync(response, HttpStatusCode.Created);
        Assert.Equal("robot$" + name, created["name"]!.GetValue<string>());
        return created["secret"]!.GetValue<string>();
    }

    private async Task PolicyAsync(object policy)
    {
        using var root = Root();
        using var response = await root.PostAsJsonAsync("/admin/v1/policies", policy, Ct);
        await OkAsync(response, HttpStatusCode.Created);
    }

    [Fact(Timeout = 120000)]
    public async Task Users_are_created_listed_changed_and_deleted_by_an_administrator_and_refusals_are_json()
    {
        var name = Unique("carol");
        using var root = Root();
        using (var created = await root.PostAsJsonAsync("/admin/v1/users", new { name, password = "carol-Pass-1" }, Ct))
        {
            Assert.Equal(name, (await OkAsync(created, HttpStatusCode.Created))["name"]!.GetValue<string>());
        }
        using (var again = await root.PostAsJsonAsync("/admin/v1/users", new { name, password = "carol-Pass-1" }, Ct))
        {
            await AssertErrorAsync(again, HttpStatusCode.Conflict, "EXISTS");
        }
        using (var list = await root.GetAsync("/admin/v1/users", Ct))
        {
            var users = (await OkAsync(list)).AsArray().Select(u => u!["name"]!.GetValue<string>()).ToList();
            Assert.Contains(name, users);
            Assert.Contains("root", users);
            Assert.DoesNotContain("passwordHash", await list.Content.ReadAsStringAsync(Ct), StringComparison.OrdinalIgnoreCase);
        }
        // The new user logs in through the token flow like an htpasswd user (no policy grants it anything: an empty grant).
        Assert.NotEmpty(await TokenAsync(name, "carol-Pass-1", "repository:x/y:pull"));
        using (var disabled = await root.PutAsJsonAsync($"/admin/v1/users/{name}", new { disabled = true }, Ct))
        {
            Assert.True((await OkAsync(disabled))["disabled"]!.GetValue<bool>());
        }
        using (var refused = await registry.Basic(name, "carol-Pass-1").GetAsync("/auth/token?service=wharf-registry", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        using (var deleted = await root.DeleteAsync($"/admin/v1/users/{name}", Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        using (var gone = await root.GetAsync($"/admin/v1/users/{name}", Ct))
        {
            await AssertErrorAsync(gone, HttpStatusCode.NotFound, "NOT_FOUND");
        }
        using (var goneAgain = await root.DeleteAsync($"/admin/v1/users/{name}", Ct))
        {
            await AssertErrorAsync(goneAgain, HttpStatusCode.NotFound, "NOT_FOUND");
        }
        // Malformed input: 400 JSON, never a 500.
        foreach (var body in new[] { "{not json", "[1,2]", "{\"name\":5,\"password\":\"x\"}", "{\"name\":\"ok-name\",\"password\":\"short\"}", "{\"name\":\"robot$x\",\"password\":\"long-enough-1\"}", "" })
        {
            using var bad = await root.PostAsync("/admin/v1/users", new StringContent(body, Encoding.UTF8, "application/json"), Ct);
            await AssertErrorAsync(bad, HttpStatusCode.BadRequest, "BAD_REQUEST");
        }
        using (var badPolicy = await root.PostAsJsonAsync("/admin/v1/policies", new { name = "bad", subjects = new[] { "x" }, repositories = new[] { "**" }, actions = new[] { "fly" } }, Ct))
        {
            await AssertErrorAsync(badPolicy, HttpStatusCode.BadRequest, "BAD_REQUEST");
        }
        using (var unknown = await root.GetAsync("/admin/v1/nothing", Ct))
        {
            await AssertErrorAsync(unknown, HttpStatusCode.NotFound, "NOT_FOUND");
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Anonymous_is_asked_to_log_in_a_non_administrator_is_denied_and_an_admin_token_is_accepted()
    {
        using (var anonymous = await registry.Basic(null, null).GetAsync("/admin/v1/users", Ct))
        {
            await AssertErrorAsync(anonymous, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
            Assert.StartsWith("Basic", anonymous.Headers.WwwAuthenticate.ToString());
        }
        using (var wrong = await registry.Basic("root", "not-the-password").GetAsync("/admin/v1/users", Ct))
        {
            await AssertErrorAsync(wrong, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
        }
        using (var alice = await registry.Basic("alice", "s3cret-Pass").PostAsJsonAsync("/admin/v1/users", new { name = "mallory", password = "mallory-Pass" }, Ct))
        {
            await AssertErrorAsync(alice, HttpStatusCode.Forbidden, "DENIED");
        }
        var token = await TokenAsync("root", StoredIdentityFixture.RootPassword, "repository:any/thing:pull");
        using var bearer = new HttpClient { BaseAddress = registry.Address };
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var list = await bearer.GetAsync("/admin/v1/policies", Ct);
        Assert.Contains("bootstrap-admin", (await OkAsync(list)).ToJsonString());
    }

    [Fact(Timeout = 120000)]
    public async Task A_revoked_robot_is_refused_within_two_seconds_with_a_token_it_got_before()
    {
        var name = Unique("ci");
        var repository = $"ci-{name}/app";
        await PolicyAsync(new { name = $"p-{name}", subjects = new[] { "robot$" + name }, repositories = new[] { $"ci-{name}/**" }, actions = new[] { "pull", "push" } });
        var secret = await CreateRobotAsync(name);
        using (var robot = registry.Registry("robot$" + name, secret))
        {
            await new RegistryClient(robot).PushImageAsync(repository, "v1");
        }
        var token = await TokenAsync("robot$" + name, secret, $"repository:{repository}:pull");
        using var bearer = new HttpClient { BaseAddress = registry.Address };
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using (var before = await bearer.GetAsync($"/v2/{repository}/manifests/v1", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }
        // Revoked through the grain, not through this gateway: the gateway learns it only as every other gateway does
        // (the grain's notification, or its version poll).
        var result = await registry.Services.GetRequiredService<IGrainFactory>().GetGrain<IAccessGrain>(0)
            .Change(new AccessChange(AccessChangeKind.RevokeRobot, "robot$" + name));
        Assert.True(result.Succeeded);
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var response = await bearer.GetAsync($"/v2/{repository}/manifests/v1", Ct);
            status = response.StatusCode;
            if (status == HttpStatusCode.OK)
            {
                await Task.Delay(20, Ct);
            }
        }
        while (status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(5));
        TestContext.Current.TestOutputHelper?.WriteLine($"revocation refused after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"refused only after {clock.ElapsedMilliseconds} ms");
        using (var login = await registry.Basic("robot$" + name, secret).GetAsync("/auth/token?service=wharf-registry", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        }
        using var root = Root();
        using var shown = await root.GetAsync($"/admin/v1/robots/robot${name}", Ct);
        Assert.False((await OkAsync(shown))["valid"]!.GetValue<bool>());
    }

    [Fact(Timeout = 60000)]
    public async Task Revoking_through_the_admin_api_refuses_basic_credentials_and_tokens_at_once()
    {
        var name = Unique("bot");
        var secret = await CreateRobotAsync(name);
        var token = await TokenAsync("robot$" + name, secret, "repository:any/thing:pull");
        using var root = Root();
        using (var revoked = await root.PostAsync($"/admin/v1/robots/{name}/revoke", null, Ct))
        {
            Assert.NotNull((await OkAsync(revoked))["revoked"]);
        }
        using var bearer = new HttpClient { BaseAddress = registry.Address };
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using (var refused = await bearer.GetAsync("/v2/", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("invalid_token", refused.Headers.WwwAuthenticate.ToString());
        }
        using (var missing = await root.PostAsync($"/admin/v1/robots/nobody-{name}/revoke", null, Ct))
        {
            await AssertErrorAsync(missing, HttpStatusCode.NotFound, "NOT_FOUND");
        }
    }

    [Fact(Timeout = 60000)]
    public async Task An_expired_robot_is_refused()
    {
        var name = Unique("old");
        var secret = await CreateRobotAsync(name, new { expires = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("O") });
        using (var login = await registry.Basic("robot$" + name, secret).GetAsync("/auth/token?service=wharf-registry", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, login.StatusCode);
        }
        // One that expires while its token is still valid: refused from then on.
        var brief = Unique("brief");
        var briefSecret = await CreateRobotAsync(brief, new { expiresInSeconds = 2 });
        var token = await TokenAsync("robot$" + brief, briefSecret, "repository:any/thing:pull");
        using var bearer = new HttpClient { BaseAddress = registry.Address };
        bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            using var response = await bearer.GetAsync("/v2/", Ct);
            status = response.StatusCode;
            if (status == HttpStatusCode.OK)
            {
                await Task.Delay(100, Ct);
            }
        }
        while (status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact(Timeout = 120000)]
    public async Task Team_membership_grants_access_and_leaving_the_team_takes_it_away()
    {
        var user = Unique("dave");
        var team = Unique("devs");
        var prefix = Unique("team-b");
        using var root = Root();
        using (var created = await root.PostAsJsonAsync("/admin/v1/users", new { name = user, password = "dave-Pass-1" }, Ct))
        {
            await OkAsync(created, HttpStatusCode.Created);
        }
        using (var t = await root.PostAsJsonAsync("/admin/v1/teams", new { name = team, members = new[] { user } }, Ct))
        {
            await OkAsync(t, HttpStatusCode.Created);
        }
        await PolicyAsync(new { name = $"p-{team}", subjects = new[] { "team:" + team }, repositories = new[] { prefix + "/**" }, actions = new[] { "pull", "push" } });
        using (var dave = registry.Registry(user, "dave-Pass-1"))
        {
            await new RegistryClient(dave).PushImageAsync(prefix + "/app", "v1");
            using var elsewhere = await dave.PostAsync($"/v2/{Unique("other")}/app/blobs/uploads/", null, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.StatusCode);
        }
        using (var emptied = await root.PutAsJsonAsync($"/admin/v1/teams/{team}", new { members = Array.Empty<string>() }, Ct))
        {
            await OkAsync(emptied);
        }
        using var after = registry.Registry(user, "dave-Pass-1");
        using var pull = await after.GetAsync($"/v2/{prefix}/app/manifests/v1", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, pull.StatusCode);
    }

    [Fact(Timeout = 120000)]
    public async Task An_immutable_tag_is_not_moved_but_the_same_digest_may_be_pushed_again()
    {
        var prefix = Unique("frozen");
        var rule = $"imm-{prefix}";
        await PolicyAsync(new { name = rule, repositories = new[] { prefix + "/**" }, immutableTags = true });
        using var http = registry.Registry("root", StoredIdentityFixture.RootPassword);
        var client = new RegistryClient(http);
        var first = await client.PushImageAsync(prefix + "/app", "v1");
        await client.PushManifestAsync(prefix + "/app", "v1", first.Manifest);
        var second = await client.PushImageAsync(prefix + "/app", null);
        using (var moved = await client.PutManifestAsync(prefix + "/app", "v1", second.Manifest, RegistryClient.OciManifest))
        {
            var body = await moved.Content.ReadAsStringAsync(Ct);
            Assert.Equal(HttpStatusCode.Forbidden, moved.StatusCode);
            Assert.Contains("\"DENIED\"", body);
            Assert.Contains("v1", body);
            Assert.Contains(rule, body);
        }
        await client.PushManifestAsync(prefix + "/app", "v2", second.Manifest);
        using var still = await client.GetAsync($"/v2/{prefix}/app/manifests/v1", RegistryClient.OciManifest);
        Assert.Equal(first.Digest, RegistryClient.Header(still, "Docker-Content-Digest"));
        // Elsewhere tags move as before.
        var free = Unique("free") + "/app";
        await client.PushImageAsync(free, "v1");
        await client.PushImageAsync(free, "v1");
    }

    [Fact(Timeout = 180000)]
    public async Task Random_admin_requests_get_json_answers_and_never_a_5xx()
    {
        using var root = Root();
        var text = Gen.String[Gen.Char["{}[]\":,. az09$*/-_tfn"], 0, 80];
        var value = Gen.OneOf<JsonNode?>(
            text.Select(t => (JsonNode?)JsonValue.Create(t)),
            Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l)),
            Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b)),
            Gen.Const((JsonNode?)null),
            Gen.String[Gen.Char.AlphaNumeric, 0, 12].Array[0, 4].Select(a => (JsonNode?)new JsonArray([.. a.Select(x => (JsonNode?)JsonValue.Create(x))])),
            Gen.Int[0, 9].Select(i => (JsonNode?)new JsonObject { ["x"] = i }));
        string[] keys = ["name", "password", "disabled", "members", "subjects", "repositories", "actions", "immutableTags", "expiresInSeconds", "expires", "description"];
        var structured = Gen.Int[0, keys.Length - 1].Select(value).Array[0, 6].Select(pairs =>
        {
            var o = new JsonObject();
            foreach (var (k, v) in pairs)
            {
                o[keys[k]] = v?.DeepClone();
            }
            return o.ToJsonString();
        });
        var body = Gen.OneOf(text, structured);
        var segment = Gen.String[Gen.Char["az09$.-_"], 1, 10].Where(x => x is not ("root" or "bootstrap-admin"));
        string[] resources = ["users", "robots", "teams", "policies", "nothing"];
        string[] methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
        var path = Gen.Select(Gen.Int[0, resources.Length - 1].Select(i => resources[i]), segment, Gen.Int[0, 2])
            .Select((resource, name, depth) => depth switch { 0 => resource, 1 => $"{resource}/{name}", _ => $"{resource}/{name}/revoke" });
        var method = Gen.Int[0, methods.Length - 1].Select(i => methods[i]);
        await Gen.Select(method, path, body).SampleAsync(async (m, p, b) =>
        {
            using var request = new HttpRequestMessage(new HttpMethod(m), "/admin/v1/" + p);
            if (m is "POST" or "PUT" or "PATCH")
            {
                request.Content = new StringContent(b, Encoding.UTF8, "application/json");
            }
            using var response = await root.SendAsync(request, Ct);
            var status = (int)response.StatusCode;
            Assert.True(status is 200 or 201 or 204 or 400 or 404 or 405 or 409, $"{m} {p} {b} → {status}: {await response.Content.ReadAsStringAsync(Ct)}");
            if (status != 204)
            {
                Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            }
        }, iter: 300, threads: 1);
        // The administrator is still there.
        using var users = await root.GetAsync("/admin/v1/users/root", Ct);
        Assert.Equal(HttpStatusCode.OK, users.StatusCode);
    }

    [Fact(Timeout = 60000)]
    public async Task An_administrator_of_a_pattern_manages_policies_within_it_only()
    {
        var user = Unique("erin");
        var prefix = Unique("team-c");
        using var root = Root();
        using (var created = await root.PostAsJsonAsync("/admin/v1/users", new { name = user, password = "erin-Pass-1" }, Ct))
        {
            await OkAsync(created, HttpStatusCode.Created);
        }
        await PolicyAsync(new { name = $"admin-{user}", subjects = new[] { user }, repositories = new[] { prefix + "/**" }, actions = new[] { "admin" } });
        using var erin = registry.Basic(user, "erin-Pass-1");
        using (var inside = await erin.PostAsJsonAsync("/admin/v1/policies", new { name = $"in-{user}", subjects = new[] { "bob" }, repositories = new[] { prefix + "/app" }, actions = new[] { "pull" } }, Ct))
        {
            await OkAsync(inside, HttpStatusCode.Created);
        }
        using (var outside = await erin.PostAsJsonAsync("/admin/v1/policies", new { name = $"out-{user}", subjects = new[] { "bob" }, repositories = new[] { "**" }, actions = new[] { "pull" } }, Ct))
        {
            await AssertErrorAsync(outside, HttpStatusCode.Forbidden, "DENIED");
        }
        using (var users = await erin.GetAsync("/admin/v1/users", Ct))
        {
            await AssertErrorAsync(users, HttpStatusCode.Forbidden, "DENIED");
        }
        using var mine = await erin.GetAsync("/admin/v1/policies", Ct);
        var names = (await OkAsync(mine)).AsArray().Select(p => p!["name"]!.GetValue<string>()).ToList();
        Assert.Contains($"in-{user}", names);
        Assert.DoesNotContain("bootstrap-admin", names);
    }
}

/// <summary><c>wharf users|robots|teams|policies</c> against the gateway's admin API.</summary>
public sealed class IdentityCliTests(StoredIdentityFixture registry) : IClassFixture<StoredIdentityFixture>
{
    private async Task<(int Code, string Output, string Errors)> WharfAsync(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(output), Ansi = Spectre.Console.AnsiSupport.No,
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors, Interactive = Spectre.Console.InteractionSupport.No,
        });
        var code = await Wharf.Cli.WharfCli.RunAsync(["--registry", registry.Address.ToString(), .. args], console, errors, TestContext.Current.CancellationToken);
        return (code, output.ToString(), errors.ToString());
    }

    [Fact(Timeout = 120000)]
    public async Task The_cli_lists_creates_revokes_and_deletes_and_a_refusal_is_one_line_and_a_nonzero_exit()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        Environment.SetEnvironmentVariable("WHARF_PASSWORD", StoredIdentityFixture.RootPassword);
        Environment.SetEnvironmentVariable("WHARF_NEW_PASSWORD", "gina-Pass-12");
        try
        {
            await RunCommandsAsync(suffix);
        }
        finally
        {
            Environment.SetEnvironmentVariable("WHARF_PASSWORD", null);
            Environment.SetEnvironmentVariable("WHARF_NEW_PASSWORD", null);
        }
    }

    private async Task RunCommandsAsync(string suffix)
    {
        var created = await WharfAsync("users", "create", $"gina{suffix}", "--user", "root");
        Assert.True(created.Code == 0, created.Errors);
        Assert.Contains($"gina{suffix}", (await WharfAsync("users", "list", "--user", "root")).Output);
        var robot = await WharfAsync("robots", "create", $"cli{suffix}", "--expires-in", "3600", "--user", "root");
        Assert.True(robot.Code == 0, robot.Errors);
        Assert.Matches($"^robot\\$cli{suffix} \\S{{40,}}", robot.Output.Trim());
        Assert.Equal(0, (await WharfAsync("robots", "revoke", $"cli{suffix}", "--user", "root")).Code);
        Assert.Contains("(revoked)", (await WharfAsync("robots", "list", "--user", "root")).Output);
        Assert.Equal(0, (await WharfAsync("teams", "create", $"t{suffix}", "--member", $"gina{suffix}", "--member", $"robot$cli{suffix}", "--user", "root")).Code);
        Assert.Contains($"t{suffix}: gina{suffix}, robot$cli{suffix}", (await WharfAsync("teams", "list", "--user", "root")).Output);
        var policy = await WharfAsync("policies", "create", $"p{suffix}", "--subject", $"team:t{suffix}", "--repository", $"t{suffix}/**", "--action", "pull", "--user", "root");
        Assert.True(policy.Code == 0, policy.Errors);
        Assert.Contains($"p{suffix}: team:t{suffix} may pull on t{suffix}/**", (await WharfAsync("policies", "list", "--user", "root")).Output);
        foreach (var (kind, name) in new[] { ("policies", $"p{suffix}"), ("teams", $"t{suffix}"), ("robots", $"cli{suffix}"), ("users", $"gina{suffix}") })
        {
            var deleted = await WharfAsync(kind, "delete", name, "--user", "root");
            Assert.True(deleted.Code == 0, deleted.Errors);
        }
        var missing = await WharfAsync("users", "delete", $"gina{suffix}", "--user", "root");
        Assert.Equal(1, missing.Code);
        Assert.Equal($"wharf: user gina{suffix} does not exist (NOT_FOUND, 404)", missing.Errors.Trim());
        var denied = await WharfAsync("users", "list", "--user", "alice");
        Assert.Equal(1, denied.Code);
        Assert.Single(denied.Errors.Trim().Split('\n'));
        Assert.Contains("401", denied.Errors);
    }
}

/// <summary>Users, robots, teams, policies and the signing key survive a restart of the all-in-one.</summary>
public sealed class StoredIdentityRestartTests
{
    [Fact(Timeout = 180000)]
    public async Task Stored_identities_and_the_signing_key_survive_a_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        var dir = Path.Combine(Path.GetTempPath(), "wharf-identrestart-" + Guid.NewGuid().ToString("N"));
        try
        {
            string secret;
            string token;
            await using (var first = await StoredIdentityFixture.StartAsync(dir, StoredIdentityFixture.Arguments(dir)))
            {
                var address = new Uri(first.Urls.Single().TrimEnd('/') + "/");
                using var root = StoredIdentityFixture.BasicClient(address, "root", StoredIdentityFixture.RootPassword);
                (await root.PostAsJsonAsync("/admin/v1/users", new { name = "frank", password = "frank-Pass-1" }, ct)).EnsureSuccessStatusCode();
                (await root.PostAsJsonAsync("/admin/v1/teams", new { name = "ops", members = new[] { "frank", "robot$deploy" } }, ct)).EnsureSuccessStatusCode();
                (await root.PostAsJsonAsync("/admin/v1/policies", new { name = "ops-all", subjects = new[] { "team:ops" }, repositories = new[] { "ops/**" }, actions = new[] { "*" } }, ct)).EnsureSuccessStatusCode();
                using var robot = await root.PostAsJsonAsync("/admin/v1/robots", new { name = "deploy" }, ct);
                robot.EnsureSuccessStatusCode();
                secret = JsonNode.Parse(await robot.Content.ReadAsStringAsync(ct))!["secret"]!.GetValue<string>();
                using var frank = new HttpClient(new TokenFlowHandler("frank", "frank-Pass-1")) { BaseAddress = address };
                await new RegistryClient(frank).PushImageAsync("ops/app", "v1");
                using var login = StoredIdentityFixture.BasicClient(address, "robot$deploy", secret);
                token = JsonNode.Parse(await login.GetStringAsync("/auth/token?service=wharf-registry&scope=repository:ops/app:pull", ct))!["token"]!.GetValue<string>();
                await first.StopAsync(ct);
            }
            // Started again without the bootstrap settings: everything comes from the stored state.
            await using var second = await StoredIdentityFixture.StartAsync(dir, StoredIdentityFixture.Arguments(dir, bootstrap: false));
            var again = new Uri(second.Urls.Single().TrimEnd('/') + "/");
            using (var root = StoredIdentityFixture.BasicClient(again, "root", StoredIdentityFixture.RootPassword))
            {
                var policies = await root.GetStringAsync("/admin/v1/policies", ct);
                Assert.Contains("ops-all", policies);
                Assert.Contains("bootstrap-admin", policies);
                Assert.Contains("frank", await root.GetStringAsync("/admin/v1/users", ct));
                Assert.Contains("robot$deploy", await root.GetStringAsync("/admin/v1/teams/ops", ct));
            }
            using (var bearer = new HttpClient { BaseAddress = again })
            {
                bearer.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                using var pulled = await bearer.GetAsync("/v2/ops/app/manifests/v1", ct);
                Assert.Equal(HttpStatusCode.OK, pulled.StatusCode);
            }
            using var robotAgain = new HttpClient(new TokenFlowHandler("robot$deploy", secret)) { BaseAddress = again };
            await new RegistryClient(robotAgain).PushImageAsync("ops/other", "v1");
            using var frankAgain = new HttpClient(new TokenFlowHandler("frank", "frank-Pass-1")) { BaseAddress = again };
            using var pull = await frankAgain.GetAsync("/v2/ops/other/manifests/v1", ct);
            Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
            await second.StopAsync(ct);
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }
}
