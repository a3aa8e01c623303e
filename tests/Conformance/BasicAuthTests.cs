using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Conformance;

/// <summary>A registry in Basic mode, its users in an htpasswd file made by <c>htpasswd -B</c> (Distribution's format).</summary>
public sealed class BasicAuthFixture : IAsyncLifetime
{
    // `htpasswd -nbB alice 's3cret-Pass'` and `htpasswd -nbB bob hunter2` (apache2-utils), verbatim.
    public const string Htpasswd = """
        # users of the auth tests
        alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG
        bob:$2y$05$Mc5W4Cm1GT5DJiPnxJTkkOkAhBmK1kdMy1SSpjnpOW.3FYi1FAsIC
        carol:{SHA}not-bcrypt-so-never-accepted
        """;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wharf-auth-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public Uri Address { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var file = Path.Combine(_dir, "htpasswd");
        await File.WriteAllTextAsync(file, Htpasswd);
        _app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(_dir, "data")}", "--Wharf:Auth:Mode=Basic", $"--Wharf:Auth:Htpasswd={file}"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))
            ?? throw new InvalidOperationException("the all-in-one refused its configuration");
        await _app.StartAsync();
        Address = new Uri(_app.Urls.Single().TrimEnd('/') + "/");
    }

    public HttpClient Client(string? user = null, string? password = null)
    {
        var http = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
        if (user is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        return http;
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

public sealed class BasicAuthTests(BasicAuthFixture registry) : IClassFixture<BasicAuthFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task AssertChallengedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Basic realm=\"wharf\"", response.Headers.WwwAuthenticate.ToString());
        Assert.Equal("registry/2.0", response.Headers.GetValues("Docker-Distribution-API-Version").Single());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("UNAUTHORIZED", body.RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
    }

    [Fact(Timeout = 30000)]
    public async Task Base_endpoint_without_credentials_is_challenged_with_basic()
    {
        using var http = registry.Client();
        using var response = await http.GetAsync("/v2/", Ct);
        await AssertChallengedAsync(response);
    }

    [Theory(Timeout = 30000)]
    [InlineData("alice", "wrong")]
    [InlineData("nobody", "s3cret-Pass")]
    [InlineData("carol", "anything")]
    public async Task Wrong_password_unknown_user_and_non_bcrypt_entries_are_refused(string user, string password)
    {
        using var http = registry.Client(user, password);
        using var response = await http.GetAsync("/v2/_catalog", Ct);
        await AssertChallengedAsync(response);
    }

    [Fact(Timeout = 30000)]
    public async Task A_malformed_authorization_header_is_refused_not_a_500()
    {
        using var http = registry.Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/");
        request.Headers.TryAddWithoutValidation("Authorization", "Basic !!!not-base64");
        using var response = await http.SendAsync(request, Ct);
        await AssertChallengedAsync(response);
    }

    [Fact(Timeout = 30000)]
    public async Task Users_of_an_htpasswd_B_file_push_and_pull_and_strangers_cannot_pull()
    {
        using var alice = registry.Client("alice", "s3cret-Pass");
        var client = new RegistryClient(alice);
        var image = await client.PushImageAsync("auth/app", "v1");

        using var bob = registry.Client("bob", "hunter2");
        using var pulled = await bob.GetAsync("/v2/auth/app/manifests/v1", Ct);
        Assert.Equal(HttpStatusCode.OK, pulled.StatusCode);
        Assert.Equal(image.Manifest, await pulled.Content.ReadAsByteArrayAsync(Ct));

        using var stranger = registry.Client();
        using var refused = await stranger.GetAsync("/v2/auth/app/manifests/v1", Ct);
        await AssertChallengedAsync(refused);
        using var refusedPush = await stranger.PostAsync("/v2/auth/app/blobs/uploads/", null, Ct);
        await AssertChallengedAsync(refusedPush);
    }
}

public sealed class AuthConfigurationTests
{
    [Fact(Timeout = 30000)]
    public void Basic_mode_without_an_htpasswd_file_refuses_to_start()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wharf-auth-bad-" + Guid.NewGuid().ToString("N"));
        try
        {
            var app = AllInOne.Build(["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={dir}", "--Wharf:Auth:Mode=Basic", "--Wharf:Auth:Htpasswd=/nonexistent/htpasswd"]);
            Assert.Null(app);
            app = AllInOne.Build(["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={dir}", "--Wharf:Auth:Mode=Kerberos"]);
            Assert.Null(app);
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }
}
