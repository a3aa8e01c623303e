using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CsCheck;

namespace Wharf.Tests.Conformance;

/// <summary>The token endpoint of Token mode (Distribution token.md and oauth.md) and tokens it must refuse, over HTTP.</summary>
public sealed class TokenServiceTests(TokenMatrixFixture registry) : IClassFixture<TokenMatrixFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Plain() => new() { BaseAddress = registry.Address, Timeout = TimeSpan.FromSeconds(30) };

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private async Task<JsonElement> TokenAsync(string query, string? user = null, string? password = null, HttpStatusCode expect = HttpStatusCode.OK)
    {
        using var http = Plain();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/auth/token?service=wharf-registry" + query);
        if (user is not null)
        {
            request.Headers.Authorization = Basic(user, password!);
        }
        using var response = await http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == expect, $"{(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static JsonElement Payload(string token) => JsonDocument.Parse(Base64Url.DecodeFromChars(token.Split('.')[1])).RootElement.Clone();

    private static string Access(JsonElement token) => string.Join(" ", Payload(token.GetProperty("token").GetString()!).GetProperty("access").EnumerateArray()
        .Select(a => $"{a.GetProperty("type").GetString()}:{a.GetProperty("name").GetString()}:{string.Join(",", a.GetProperty("actions").EnumerateArray().Select(x => x.GetString()))}"));

    [Fact(Timeout = 60000)]
    public async Task A_token_answer_has_the_specs_fields_and_claims()
    {
        var answer = await TokenAsync("&scope=repository:team-a/app:pull&client_id=test&account=alice", "alice", "s3cret-Pass");
        Assert.Equal(answer.GetProperty("token").GetString(), answer.GetProperty("access_token").GetString());
        Assert.Equal(300, answer.GetProperty("expires_in").GetInt32());
        Assert.True(DateTimeOffset.TryParse(answer.GetProperty("issued_at").GetString(), out _));
        Assert.False(answer.TryGetProperty("refresh_token", out _));
        var claims = Payload(answer.GetProperty("token").GetString()!);
        Assert.Equal(("wharf", "alice", "wharf-registry"), (claims.GetProperty("iss").GetString(), claims.GetProperty("sub").GetString(), claims.GetProperty("aud").GetString()));
        foreach (var claim in new[] { "exp", "nbf", "iat", "jti" })
        {
            Assert.True(claims.TryGetProperty(claim, out _), claim);
        }
        Assert.Equal("repository:team-a/app:pull", Access(answer));
    }

    [Fact(Timeout = 60000)]
    public async Task Grants_are_the_intersection_of_asked_and_allowed_and_an_empty_grant_is_still_a_token()
    {
        Assert.Equal("repository:team-a/app:pull", Access(await TokenAsync("&scope=repository:team-a/app:pull,push,delete", "bob", "hunter2")));
        Assert.Equal("repository:team-a/app:pull repository:bob/app:pull,push",
            Access(await TokenAsync("&scope=repository:team-a/app:*&scope=repository:bob/app:pull,push&scope=repository:team-a/deep/app:pull", "bob", "hunter2")));
        Assert.Equal("", Access(await TokenAsync("&scope=repository:team-a/app:pull")));
        Assert.Equal("repository:public/tools:pull registry:catalog:*", Access(await TokenAsync("&scope=repository:public/tools:pull,push&scope=registry:catalog:*")));
    }

    [Theory(Timeout = 60000)]
    [InlineData("&scope=repository:app", null, null, HttpStatusCode.BadRequest)]
    [InlineData("&scope=a%20b", null, null, HttpStatusCode.BadRequest)]
    [InlineData("&service=another", null, null, HttpStatusCode.BadRequest)]
    [InlineData("&account=bob", "alice", "s3cret-Pass", HttpStatusCode.BadRequest)]
    [InlineData("", "alice", "wrong", HttpStatusCode.Unauthorized)]
    [InlineData("", "nobody", "x", HttpStatusCode.Unauthorized)]
    public async Task Malformed_requests_and_bad_credentials_are_refused_with_an_oauth_error(string query, string? user, string? password, HttpStatusCode status)
    {
        var answer = await TokenAsync(query, user, password, status);
        Assert.False(string.IsNullOrEmpty(answer.GetProperty("error").GetString()));
    }

    [Fact(Timeout = 60000)]
    public async Task An_offline_token_refreshes_over_the_oauth2_form_and_password_grants_work_too()
    {
        var first = await TokenAsync("&offline_token=true&client_id=test", "bob", "hunter2");
        var refresh = first.GetProperty("refresh_token").GetString()!;
        using var http = Plain();
        using var refreshed = await http.PostAsync("/auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = refresh,
            ["service"] = "wharf-registry",
            ["client_id"] = "test",
            ["scope"] = "repository:bob/app:pull,push repository:team-a/deep/app:pull",
        }), Ct);
        var body = JsonDocument.Parse(await refreshed.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(HttpStatusCode.OK, refreshed.StatusCode);
        Assert.Equal("repository:bob/app:pull,push", body.GetProperty("scope").GetString());
        Assert.Equal("bob", Payload(body.GetProperty("access_token").GetString()!).GetProperty("sub").GetString());

        using var password = await http.PostAsync("/auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "alice",
            ["password"] = "s3cret-Pass",
            ["service"] = "wharf-registry",
            ["client_id"] = "test",
            ["access_type"] = "offline",
            ["scope"] = "repository:team-a/app:pull",
        }), Ct);
        var passwordBody = JsonDocument.Parse(await password.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(HttpStatusCode.OK, password.StatusCode);
        Assert.True(passwordBody.TryGetProperty("refresh_token", out _));

        // An access token is not a refresh token, and a wrong password or grant type is refused.
        foreach (var (form, status) in new[]
        {
            (new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = body.GetProperty("access_token").GetString()! }, HttpStatusCode.Unauthorized),
            (new Dictionary<string, string> { ["grant_type"] = "password", ["username"] = "alice", ["password"] = "nope" }, HttpStatusCode.Unauthorized),
            (new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["code"] = "x" }, HttpStatusCode.BadRequest),
        })
        {
            using var refused = await http.PostAsync("/auth/token", new FormUrlEncodedContent(form), Ct);
            Assert.Equal(status, refused.StatusCode);
        }
        using var notAForm = await http.PostAsync("/auth/token", new StringContent("{}", Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, notAForm.StatusCode);
    }

    [Fact(Timeout = 60000)]
    public async Task A_token_for_one_repository_is_refused_on_another_and_garbage_is_an_invalid_token()
    {
        var token = (await TokenAsync("&scope=repository:bob/app:pull", "bob", "hunter2")).GetProperty("token").GetString()!;
        using var http = Plain();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var own = await http.GetAsync("/v2/bob/app/tags/list", Ct);
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        using var other = await http.GetAsync("/v2/team-a/app/tags/list", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
        Assert.Contains("error=\"insufficient_scope\"", other.Headers.WwwAuthenticate.ToString());

        var parts = token.Split('.');
        var widened = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[1])).Replace("bob/app", "team-a/app", StringComparison.Ordinal);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", parts[0] + "." + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(widened)) + "." + parts[2]);
        using var forged = await http.GetAsync("/v2/team-a/app/tags/list", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Contains("error=\"invalid_token\"", forged.Headers.WwwAuthenticate.ToString());
    }

    [Fact(Timeout = 60000)]
    public async Task Forwarded_headers_from_an_untrusted_address_do_not_move_the_realm()
    {
        using var http = Plain();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "evil.example");
        using var response = await http.SendAsync(request, Ct);
        Assert.Contains($"realm=\"{registry.Address}auth/token\"", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact(Timeout = 60000)]
    public void The_generated_signing_key_is_kept_in_the_data_folder_readable_only_by_its_owner()
    {
        var file = Path.Combine(registry.DataPath, "auth", "token-signing-key.pem");
        Assert.Contains("PRIVATE KEY", File.ReadAllText(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
    }

    [Fact(Timeout = 120000)]
    public async Task Malformed_authorization_headers_and_scopes_get_a_4xx_never_a_5xx()
    {
        using var http = Plain();
        var header = Gen.OneOf(Gen.String[Gen.Char.AlphaNumeric, 0, 60], Gen.String[Gen.Char["eyJ.-_AZaz09= "], 0, 300].Select(s => "Bearer " + s),
            Gen.String[Gen.Char.AlphaNumeric, 0, 60].Select(s => "Basic " + s), Gen.String[Gen.Char.AlphaNumeric, 0, 60].Select(s => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(s))));
        var scope = Gen.String[Gen.Char["repository:/,*()pul a-z0-9%"], 0, 60];
        await Gen.Select(header, scope).SampleAsync(async (h, s) =>
        {
            using var v2 = new HttpRequestMessage(HttpMethod.Get, "/v2/team-a/app/manifests/v1");
            v2.Headers.TryAddWithoutValidation("Authorization", h);
            using var r1 = await http.SendAsync(v2, Ct);
            Assert.True((int)r1.StatusCode is 401 or 400, $"{h} → {(int)r1.StatusCode}");
            Assert.StartsWith("application/json", r1.Content.Headers.ContentType?.MediaType ?? "");
            using var token = new HttpRequestMessage(HttpMethod.Get, "/auth/token?scope=" + Uri.EscapeDataString(s));
            token.Headers.TryAddWithoutValidation("Authorization", h);
            using var r2 = await http.SendAsync(token, Ct);
            Assert.True((int)r2.StatusCode is 200 or 400 or 401, $"{h} {s} → {(int)r2.StatusCode}");
            Assert.StartsWith("application/json", r2.Content.Headers.ContentType?.MediaType ?? "");
        }, iter: 300, threads: 1);
    }
}

/// <summary>The all-in-one's generated signing key survives a restart: a token issued before it still works after.</summary>
public sealed class TokenKeyRestartTests
{
    [Fact(Timeout = 120000)]
    public async Task A_token_issued_before_a_restart_is_accepted_after_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var dir = Path.Combine(Path.GetTempPath(), "wharf-authkey-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var htpasswd = Path.Combine(dir, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, BasicAuthFixture.Htpasswd, ct);
            string[] args = ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={Path.Combine(dir, "data")}", "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Htpasswd={htpasswd}"];
            string token;
            await using (var first = Silo.AllInOne.Build(args) ?? throw new InvalidOperationException("refused"))
            {
                await first.StartAsync(ct);
                using var http = new HttpClient { BaseAddress = new Uri(first.Urls.Single()) };
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret-Pass")));
                token = JsonDocument.Parse(await http.GetStringAsync("/auth/token?service=wharf-registry", ct)).RootElement.GetProperty("token").GetString()!;
                await first.StopAsync(ct);
            }
            await using var second = Silo.AllInOne.Build(args) ?? throw new InvalidOperationException("refused");
            await second.StartAsync(ct);
            using var again = new HttpClient { BaseAddress = new Uri(second.Urls.Single()) };
            again.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using var response = await again.GetAsync("/v2/", ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await second.StopAsync(ct);
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }
}
