using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>
/// An all-in-one with users alice and bob (an htpasswd -B file) and policies: alice everything on team-a/** and
/// public/**, bob pull on team-a/* and pull+push on bob/**, anonymous pull on public/** — in Basic or Token mode —
/// and, stored in the cluster, the robot robot$reader, member of the team readers, which may pull team-a/**.
/// </summary>
public abstract class AuthMatrixFixture(string mode) : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-authz-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public string Mode { get; } = mode;

    public Uri Address { get; private set; } = null!;

    public Dictionary<string, TestImage> Images { get; } = [];

    public static readonly string[] Policies =
    [
        "--Wharf:Auth:Policies:0:Subjects:0=alice", "--Wharf:Auth:Policies:0:Repositories:0=team-a/**", "--Wharf:Auth:Policies:0:Repositories:1=public/**", "--Wharf:Auth:Policies:0:Actions:0=*",
        "--Wharf:Auth:Policies:1:Subjects:0=bob", "--Wharf:Auth:Policies:1:Repositories:0=team-a/*", "--Wharf:Auth:Policies:1:Actions:0=pull",
        "--Wharf:Auth:Policies:2:Subjects:0=bob", "--Wharf:Auth:Policies:2:Repositories:0=bob/**", "--Wharf:Auth:Policies:2:Actions:0=pull", "--Wharf:Auth:Policies:2:Actions:1=push",
        "--Wharf:Auth:Policies:3:Subjects:0=anonymous", "--Wharf:Auth:Policies:3:Repositories:0=public/**", "--Wharf:Auth:Policies:3:Actions:0=pull",
    ];

    public const string RobotSecret = "reader-secret-of-the-matrix-robot";

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var file = Path.Combine(_dir, "htpasswd");
        await File.WriteAllTextAsync(file, BasicAuthFixture.Htpasswd);
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(_dir, "data")}", "--Wharf:Gateway:TagLeaseSeconds=1",
             $"--Wharf:Auth:Mode={Mode}", $"--Wharf:Auth:Htpasswd={file}", "--Wharf:Auth:TrustedProxies:0=10.0.0.0/8", .. Policies],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync();
        Address = new Uri(_app.Urls.Single().TrimEnd('/') + "/");
        var stored = _app.Services.GetRequiredService<Wharf.Gateway.Auth.StoredAccess>();
        var now = DateTimeOffset.UtcNow;
        foreach (var change in new Wharf.Contracts.Grains.AccessChange[]
        {
            new(Wharf.Contracts.Grains.AccessChangeKind.CreateRobot, "robot$reader",
                Robot: new(1, "robot$reader", Wharf.Gateway.Auth.StoredAccess.HashSecret(RobotSecret), now, null, null, null)),
            new(Wharf.Contracts.Grains.AccessChangeKind.PutTeam, "readers", Team: new(1, "readers", ["robot$reader"], now)),
            new(Wharf.Contracts.Grains.AccessChangeKind.PutPolicy, "readers", Policy: new(1, "readers", ["team:readers"], ["team-a/**"], ["pull"], false, now)),
        })
        {
            Assert.True((await stored.ChangeAsync(change, CancellationToken.None)).Succeeded);
        }
        using var alice = Client("alice");
        foreach (var repository in new[] { "team-a/app", "team-a/deep/app", "public/tools" })
        {
            Images[repository] = await new RegistryClient(alice).PushImageAsync(repository, "v1");
        }
        using var bob = Client("bob");
        Images["bob/app"] = await new RegistryClient(bob).PushImageAsync("bob/app", "v1");
    }

    public string DataPath => Path.Combine(_dir, "data");

    /// <summary>A client as the identity: alice, bob, or anonymous.</summary>
    public HttpClient Client(string identity, TokenFlowHandler? handler = null)
    {
        var password = identity switch { "alice" => "s3cret-Pass", "bob" => "hunter2", "robot$reader" => RobotSecret, _ => null };
        handler ??= new TokenFlowHandler(password is null ? null : identity, password);
        return new HttpClient(handler) { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
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

public sealed class BasicMatrixFixture() : AuthMatrixFixture("Basic");

public sealed class TokenMatrixFixture() : AuthMatrixFixture("Token");

/// <summary>Identities × repository patterns × actions, each answer checked, in both modes.</summary>
public abstract class AuthMatrixTests<TFixture>(TFixture registry) : IClassFixture<TFixture>
    where TFixture : AuthMatrixFixture
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected TFixture Registry => registry;

    /// <summary>What a refusal looks like: 401 with a challenge for anonymous (and any refusal in Token mode, as
    /// Distribution answers insufficient_scope), 403 DENIED for an authenticated user in Basic mode.</summary>
    private async Task AssertRefusedAsync(HttpResponseMessage response, string identity, string scope)
    {
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal("registry/2.0", response.Headers.GetValues("Docker-Distribution-API-Version").Single());
        if (registry.Mode == "Basic" && identity != "anonymous")
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.True(response.RequestMessage!.Method == HttpMethod.Head || body.Contains("\"DENIED\"", StringComparison.Ordinal), body);
            return;
        }
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.True(response.RequestMessage!.Method == HttpMethod.Head || body.Contains("\"UNAUTHORIZED\"", StringComparison.Ordinal), body);
        var challenge = response.Headers.WwwAuthenticate.ToString();
        if (registry.Mode == "Basic")
        {
            Assert.Equal("Basic realm=\"wharf\"", challenge);
        }
        else
        {
            Assert.StartsWith($"Bearer realm=\"{registry.Address}auth/token\",service=\"wharf-registry\",scope=\"{scope}\"", challenge);
            Assert.EndsWith(",error=\"insufficient_scope\"", challenge);
        }
    }

    [Theory(Timeout = 60000)]
    [InlineData("alice", "team-a/app", "pull,blob,tags,referrers,push,delete", "")]
    [InlineData("alice", "team-a/deep/app", "pull,push,delete", "")]
    [InlineData("alice", "public/tools", "pull,push", "")]
    [InlineData("alice", "bob/app", "", "pull,blob,tags,referrers,push,delete")]
    [InlineData("bob", "team-a/app", "pull,blob,tags,referrers", "push,delete")]
    [InlineData("bob", "team-a/deep/app", "", "pull,blob,tags,referrers,push,delete")]
    [InlineData("bob", "bob/app", "pull,blob,tags,push", "delete")]
    [InlineData("bob", "public/tools", "pull,tags", "push,delete")]
    [InlineData("anonymous", "public/tools", "pull,blob,tags,referrers", "push,delete")]
    [InlineData("anonymous", "team-a/app", "", "pull,blob,tags,referrers,push,delete")]
    [InlineData("anonymous", "bob/app", "", "pull,push")]
    [InlineData("robot$reader", "team-a/app", "pull,blob,tags,referrers", "push,delete")]
    [InlineData("robot$reader", "team-a/deep/app", "pull,tags", "push,delete")]
    [InlineData("robot$reader", "public/tools", "pull", "push")]
    [InlineData("robot$reader", "bob/app", "", "pull,push")]
    public async Task Each_identity_may_do_what_its_policies_allow_and_nothing_else(string identity, string repository, string allowed, string refused)
    {
        var image = registry.Images[repository];
        foreach (var (action, expectAllowed) in allowed.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(a => (a, true))
                     .Concat(refused.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(a => (a, false))))
        {
            // A fresh client per action: a token from one action must not carry over to the next.
            using var http = registry.Client(identity);
            var (request, success, scopeActions) = action switch
            {
                "pull" => (new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/manifests/v1"), HttpStatusCode.OK, "pull"),
                "blob" => (new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/blobs/{image.LayerDigest}"), HttpStatusCode.OK, "pull"),
                "tags" => (new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/tags/list"), HttpStatusCode.OK, "pull"),
                "referrers" => (new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/referrers/{image.Digest}"), HttpStatusCode.OK, "pull"),
                "push" => (new HttpRequestMessage(HttpMethod.Post, $"/v2/{repository}/blobs/uploads/"), HttpStatusCode.Accepted, "pull,push"),
                // An unknown digest: allowed answers 404 MANIFEST_UNKNOWN, which proves auth let it through, and deletes nothing.
                "delete" => (new HttpRequestMessage(HttpMethod.Delete, $"/v2/{repository}/manifests/sha256:{new string('0', 64)}"), HttpStatusCode.NotFound, "delete"),
                _ => throw new ArgumentException(action),
            };
            request.Headers.Accept.ParseAdd(RegistryClient.OciManifest);
            using var response = await http.SendAsync(request, Ct);
            if (expectAllowed)
            {
                Assert.True(response.StatusCode == success, $"{identity} {action} {repository}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
                if (action == "pull")
                {
                    Assert.Equal(image.Manifest, await response.Content.ReadAsByteArrayAsync(Ct));
                }
            }
            else
            {
                await AssertRefusedAsync(response, identity, $"repository:{repository}:{scopeActions}");
            }
        }
    }

    [Theory(Timeout = 60000)]
    [InlineData("alice", "public/tools,team-a/app,team-a/deep/app")]
    [InlineData("bob", "bob/app,public/tools,team-a/app")]
    [InlineData("anonymous", "public/tools")]
    [InlineData("robot$reader", "public/tools,team-a/app,team-a/deep/app")]
    public async Task The_catalog_lists_only_what_the_caller_may_pull(string identity, string expected)
    {
        using var http = registry.Client(identity);
        using var response = await http.GetAsync("/v2/_catalog", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        // Another test of this class may have pushed team-a/to-delete, which only alice and bob may see.
        static bool Seeded(string name) => !name.StartsWith("team-a/to-delete", StringComparison.Ordinal);
        Assert.Equal(expected.Split(','), body.RootElement.GetProperty("repositories").EnumerateArray().Select(e => e.GetString()!).Where(Seeded).Order(StringComparer.Ordinal));

        // One name per page still reaches every visible name by following Link, and never another.
        var seen = new List<string>();
        var next = "/v2/_catalog?n=1";
        for (var i = 0; i < 20 && next is not null; i++)
        {
            using var page = await http.GetAsync(next, Ct);
            using var json = JsonDocument.Parse(await page.Content.ReadAsStringAsync(Ct));
            seen.AddRange(json.RootElement.GetProperty("repositories").EnumerateArray().Select(e => e.GetString()!));
            next = page.Headers.TryGetValues("Link", out var link) ? link.Single().Split(';')[0].Trim('<', '>') : null;
        }
        Assert.Equal(expected.Split(','), seen.Where(Seeded));
    }

    [Fact(Timeout = 60000)]
    public async Task A_mount_needs_pull_on_from_and_otherwise_becomes_a_plain_upload()
    {
        using var bob = registry.Client("bob");
        var readable = registry.Images["team-a/app"];
        using var mounted = await bob.PostAsync($"/v2/bob/app/blobs/uploads/?mount={readable.LayerDigest}&from=team-a/app", null, Ct);
        Assert.Equal(HttpStatusCode.Created, mounted.StatusCode);

        // bob may not pull team-a/deep/app: the same answer as for a blob `from` does not have.
        var hidden = registry.Images["team-a/deep/app"];
        using var refused = await bob.PostAsync($"/v2/bob/app/blobs/uploads/?mount={hidden.LayerDigest}&from=team-a/deep/app", null, Ct);
        using var absent = await bob.PostAsync($"/v2/bob/app/blobs/uploads/?mount=sha256:{new string('1', 64)}&from=team-a/app", null, Ct);
        Assert.Equal(HttpStatusCode.Accepted, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, absent.StatusCode);
        Assert.Equal(absent.Headers.Select(h => h.Key).Order(), refused.Headers.Select(h => h.Key).Order());
        using var stillAbsent = await bob.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/bob/app/blobs/{hidden.LayerDigest}"), Ct);
        Assert.Equal(HttpStatusCode.NotFound, stillAbsent.StatusCode);
    }

    [Fact(Timeout = 60000)]
    public async Task The_base_endpoint_challenges_without_credentials_and_answers_any_valid_identity()
    {
        using var anonymous = new HttpClient { BaseAddress = registry.Address };
        using var challenged = await anonymous.GetAsync("/v2/", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, challenged.StatusCode);
        Assert.Equal("registry/2.0", challenged.Headers.GetValues("Docker-Distribution-API-Version").Single());
        Assert.Equal(registry.Mode == "Basic" ? "Basic realm=\"wharf\"" : $"Bearer realm=\"{registry.Address}auth/token\",service=\"wharf-registry\"",
            challenged.Headers.WwwAuthenticate.ToString());
        foreach (var identity in registry.Mode == "Basic" ? new[] { "alice", "bob" } : ["alice", "bob", "anonymous"])
        {
            using var http = registry.Client(identity);
            using var ok = await http.GetAsync("/v2/", Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
    }

    [Fact(Timeout = 60000)]
    public async Task Deleting_needs_delete_and_works_with_it()
    {
        using var alice = registry.Client("alice");
        var image = await new RegistryClient(alice).PushImageAsync("team-a/to-delete", "v1");
        using var bob = registry.Client("bob");
        using var refused = await bob.DeleteAsync($"/v2/team-a/to-delete/manifests/{image.Digest}", Ct);
        await AssertRefusedAsync(refused, "bob", "repository:team-a/to-delete:delete");
        using var deleted = await alice.DeleteAsync($"/v2/team-a/to-delete/manifests/{image.Digest}", Ct);
        Assert.Equal(HttpStatusCode.Accepted, deleted.StatusCode);
    }
}

public sealed class BasicAuthMatrixTests(BasicMatrixFixture registry) : AuthMatrixTests<BasicMatrixFixture>(registry);

public sealed class TokenAuthMatrixTests(TokenMatrixFixture registry) : AuthMatrixTests<TokenMatrixFixture>(registry);
