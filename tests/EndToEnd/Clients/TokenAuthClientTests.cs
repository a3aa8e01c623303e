using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>
/// skopeo against an all-in-one in Token mode: it follows the Bearer challenge to <c>/auth/token</c> with its
/// credentials, pushes and pulls with the tokens it gets, and a user whose policy grants only pull is refused a push.
/// </summary>
public sealed class TokenAuthClientTests
{
    // `htpasswd -nbB alice 's3cret-Pass'` and `htpasswd -nbB bob hunter2` (apache2-utils), verbatim.
    private const string Htpasswd = """
        alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG
        bob:$2y$05$Mc5W4Cm1GT5DJiPnxJTkkOkAhBmK1kdMy1SSpjnpOW.3FYi1FAsIC
        """;

    [Fact(Timeout = 240_000)]
    public async Task Skopeo_pushes_and_pulls_with_tokens_and_a_user_without_push_is_refused()
    {
        var scratch = TempFolders.Create("wharf-e2e-token-");
        try
        {
            var htpasswd = Path.Combine(scratch, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, Htpasswd, TestContext.Current.CancellationToken);
            await using var registry = await StartAsync(htpasswd);
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            var image = source.AddImage("v1", [64 << 10, 3 << 10]);
            var target = $"docker://{registry.Host}/e2e/token/app:v1";

            var anonymous = await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), target);
            Assert.NotEqual(0, anonymous.ExitCode);
            var wrong = await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", tools.AuthFile, "-u", "alice", "-p", "wrong", registry.Host);
            Assert.NotEqual(0, wrong.ExitCode);

            await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", tools.AuthFile, "-u", "alice", "-p", "s3cret-Pass", registry.Host).EnsureSuccessAsync();
            await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), target).EnsureSuccessAsync();
            var back = Directory.CreateDirectory(Path.Combine(scratch, "back")).FullName;
            await tools.SkopeoAsync("copy", "--src-tls-verify=false", "--src-authfile", tools.AuthFile, target, $"oci:{back}:v1").EnsureSuccessAsync();
            Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);

            // bob may pull e2e/** but not push there.
            var bobAuth = Path.Combine(scratch, "bob-auth.json");
            await File.WriteAllTextAsync(bobAuth, """{"auths":{}}""", TestContext.Current.CancellationToken);
            await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", bobAuth, "-u", "bob", "-p", "hunter2", registry.Host).EnsureSuccessAsync();
            var bobBack = Directory.CreateDirectory(Path.Combine(scratch, "bob-back")).FullName;
            await tools.SkopeoAsync("copy", "--src-tls-verify=false", "--src-authfile", bobAuth, target, $"oci:{bobBack}:v1").EnsureSuccessAsync();
            Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(bobBack, "v1").Digest);
            var refused = await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", bobAuth, source.Reference("v1"), $"docker://{registry.Host}/e2e/token/bob:v1");
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("unauthorized", refused.StdErr, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }

    private static Task<RegistryProcess> StartAsync(string htpasswd) => RegistryProcess.StartNodeAsync(
        RegistryProcess.SiloAssemblyPath,
        [
            "--Wharf:Auth:Mode=Token", $"--Wharf:Auth:Htpasswd={htpasswd}",
            "--Wharf:Auth:Policies:0:Subjects:0=alice", "--Wharf:Auth:Policies:0:Repositories:0=e2e/**", "--Wharf:Auth:Policies:0:Actions:0=*",
            "--Wharf:Auth:Policies:1:Subjects:0=bob", "--Wharf:Auth:Policies:1:Repositories:0=e2e/**", "--Wharf:Auth:Policies:1:Actions:0=pull",
        ],
        "healthz",
        passDataPath: true,
        TimeSpan.FromMinutes(5),
        TestContext.Current.CancellationToken);

    [Fact(Timeout = 240_000)]
    public async Task Ctr_pulls_and_pushes_with_user_credentials_through_the_token_flow()
    {
        var ct = TestContext.Current.CancellationToken;
        var scratch = TempFolders.Create("wharf-e2e-token-ctr-");
        try
        {
            var htpasswd = Path.Combine(scratch, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, Htpasswd, ct);
            await using var registry = await StartAsync(htpasswd);
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            var image = source.AddImage("v1", [256 << 10]);
            await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret-Pass", source.Reference("v1"), $"docker://{registry.Host}/e2e/ctr/source:v1").EnsureSuccessAsync();
            await using var containerd = await ContainerdProcess.StartAsync(ct);

            var anonymous = await containerd.CtrAsync("images", "pull", "--plain-http", "--snapshotter", "native", $"{registry.Host}/e2e/ctr/source:v1");
            Assert.NotEqual(0, anonymous.ExitCode);
            await containerd.CtrAsync("images", "pull", "--plain-http", "--snapshotter", "native", "--user", "bob:hunter2", $"{registry.Host}/e2e/ctr/source:v1").EnsureSuccessAsync();
            var listed = await containerd.CtrAsync("images", "ls").EnsureSuccessAsync();
            Assert.Contains(image.Manifest.Digest, listed.StdOut);

            var target = $"{registry.Host}/e2e/ctr/pushed:v1";
            await containerd.CtrAsync("images", "tag", $"{registry.Host}/e2e/ctr/source:v1", target).EnsureSuccessAsync();
            var refused = await containerd.CtrAsync("images", "push", "--plain-http", "--user", "bob:hunter2", target);
            Assert.NotEqual(0, refused.ExitCode);
            await containerd.CtrAsync("images", "push", "--plain-http", "--user", "alice:s3cret-Pass", target).EnsureSuccessAsync();
            var back = await tools.SkopeoAsync("inspect", "--tls-verify=false", "--creds", "alice:s3cret-Pass", $"docker://{target}").EnsureSuccessAsync();
            using var inspected = System.Text.Json.JsonDocument.Parse(back.StdOut);
            Assert.Equal(image.Manifest.Digest, inspected.RootElement.GetProperty("Digest").GetString());
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }
}
