using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>
/// An all-in-one with tight limits: 5 manifest reads at once then 1 a second per caller, 2 s for request headers. 127.0.0.1 is a trusted proxy, so <c>X-Forwarded-For</c> stands for callers at
/// other addresses.
/// </summary>
public sealed class RateLimitFixture : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-limits-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public Uri Address { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={_dir}",
             "--Wharf:RateLimits:ManifestReads:PerSecond=1", "--Wharf:RateLimits:ManifestReads:Burst=5",
             "--Wharf:RateLimits:ConcurrentUploads=1", "--Wharf:Auth:TrustedProxies:0=127.0.0.1",
             "--Wharf:Limits:RequestHeadersTimeoutSeconds=2",
             "--Wharf:Limits:MinRequestBodyBytesPerSecond=0"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync();
        Address = new Uri(_app.Urls.Single().TrimEnd('/') + "/");
    }

    public RegistryClient Client(string? forwardedFor = null)
    {
        var http = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
        if (forwardedFor is not null)
        {
            http.DefaultRequestHeaders.Add("X-Forwarded-For", forwardedFor);
        }
        return new RegistryClient(http);
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

public sealed class RateLimitTests(RateLimitFixture registry) : IClassFixture<RateLimitFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_burst_of_manifest_reads_answers_429_with_Retry_After_and_a_client_that_waits_succeeds()
    {
        var client = registry.Client("10.1.0.1");
        var name = RegistryClient.UniqueName("limits");
        await client.PushImageAsync(name, "v1");
        var clock = Stopwatch.StartNew();
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 12; i++)
        {
            answers.Add(await client.GetAsync($"v2/{name}/manifests/v1", RegistryClient.OciManifest));
        }
        var elapsed = clock.Elapsed;
        var ok = answers.Count(a => a.StatusCode == HttpStatusCode.OK);
        // 5 at once, then one a second (+1 for a refill landing between the first and the last request).
        Assert.InRange(ok, 5, 5 + (int)Math.Ceiling(elapsed.TotalSeconds) + 1);
        var refused = answers.First(a => a.StatusCode == HttpStatusCode.TooManyRequests);
        var body = await RegistryClient.JsonAsync(refused);
        Assert.Equal("TOOMANYREQUESTS", body["errors"]![0]!["code"]!.GetValue<string>());
        Assert.Equal("registry/2.0", refused.Headers.GetValues("Docker-Distribution-API-Version").Single());
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));

        // A client that honours Retry-After gets its answer.
        HttpResponseMessage? answer = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            answer = await client.GetAsync($"v2/{name}/manifests/v1", RegistryClient.OciManifest);
            if (answer.StatusCode != HttpStatusCode.TooManyRequests)
            {
                break;
            }
            await Task.Delay(answer.Headers.RetryAfter!.Delta!.Value, Ct);
        }
        Assert.Equal(HttpStatusCode.OK, answer!.StatusCode);
    }

    [Fact]
    public async Task Each_caller_has_its_own_bucket_and_other_classes_are_not_limited()
    {
        var name = RegistryClient.UniqueName("limits");
        var greedy = registry.Client("10.1.0.2");
        await greedy.PushImageAsync(name, "v1");
        var refused = false;
        for (var i = 0; i < 20 && !refused; i++)
        {
            refused = (await greedy.GetAsync($"v2/{name}/manifests/v1", RegistryClient.OciManifest)).StatusCode == HttpStatusCode.TooManyRequests;
        }
        Assert.True(refused);
        // Another address still reads; the greedy one still lists tags (another class, unlimited here).
        Assert.Equal(HttpStatusCode.OK, (await registry.Client("10.1.0.3").GetAsync($"v2/{name}/manifests/v1", RegistryClient.OciManifest)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await greedy.GetAsync($"v2/{name}/tags/list")).StatusCode);
    }

    [Fact]
    public async Task A_client_that_sends_its_headers_too_slowly_is_disconnected()
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, registry.Address.Port, Ct);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"), Ct);
        var clock = Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        var buffer = new byte[4096];
        var received = new StringBuilder();
        int read;
        // Kestrel answers 408 and closes the connection once the 2 s header timeout passes (checked each second).
        while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
        {
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        Assert.True(received.Length == 0 || received.ToString().StartsWith("HTTP/1.1 408", StringComparison.Ordinal), received.ToString());
    }
}

/// <summary>
/// Failed-login throttling on Basic credentials: 3 refused passwords, then 429. The bucket refills once in 1,000 s
/// here, so no refill lands inside the test (the refill itself is a unit test: RateLimitsTests).
/// </summary>
public sealed class FailedLoginTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-logins-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        await File.WriteAllTextAsync(Path.Combine(_dir, "htpasswd"), BasicAuthFixture.Htpasswd, Ct);
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(_dir, "data")}", "--Wharf:Auth:Mode=Basic",
             $"--Wharf:Auth:Htpasswd={Path.Combine(_dir, "htpasswd")}", "--Wharf:Auth:TrustedProxies:0=127.0.0.1",
             "--Wharf:RateLimits:FailedLogins:PerSecond=0.001", "--Wharf:RateLimits:FailedLogins:Burst=3"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync(Ct);
    }

    private HttpClient Client(string user, string password, string address)
    {
        var http = new HttpClient { BaseAddress = new Uri(_app!.Urls.Single().TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        http.DefaultRequestHeaders.Add("X-Forwarded-For", address);
        return http;
    }

    [Fact]
    public async Task A_guesser_is_answered_429_without_a_check_while_the_user_elsewhere_and_others_log_in()
    {
        using var guesser = Client("alice", "guess", "10.2.0.1");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await guesser.GetAsync("v2/", Ct)).StatusCode);
        }
        // The address is out of attempts: even the right password is not checked now.
        using var sameAddress = Client("alice", "s3cret-Pass", "10.2.0.1");
        var refused = await sameAddress.GetAsync("v2/", Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("TOOMANYREQUESTS", (string)System.Text.Json.Nodes.JsonNode.Parse(await refused.Content.ReadAsStringAsync(Ct))!["errors"]![0]!["code"]!);
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.ToString());
        // Alice elsewhere is not locked out by the guesser, nor is another user at the guesser's address.
        using var elsewhere = Client("alice", "s3cret-Pass", "10.2.0.2");
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("v2/", Ct)).StatusCode);
        using var bob = Client("bob", "hunter2", "10.2.0.1");
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync("v2/", Ct)).StatusCode);
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
