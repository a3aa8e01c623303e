using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>skopeo against an all-in-one in Basic mode with an htpasswd file made by <c>htpasswd -B</c>.</summary>
public sealed class BasicAuthClientTests
{
    // `htpasswd -nbB alice 's3cret-Pass'` (apache2-utils), verbatim.
    private const string Htpasswd = "alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG\n";

    [Fact(Timeout = 180_000)]
    public async Task Skopeo_logs_in_pushes_and_pulls_and_is_refused_without_or_with_wrong_credentials()
    {
        var scratch = TempFolders.Create("wharf-e2e-auth-");
        try
        {
            var htpasswd = Path.Combine(scratch, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, Htpasswd, TestContext.Current.CancellationToken);
            await using var registry = await RegistryProcess.StartNodeAsync(
                RegistryProcess.SiloAssemblyPath,
                ["--Wharf:Auth:Mode=Basic", $"--Wharf:Auth:Htpasswd={htpasswd}"],
                "healthz",
                passDataPath: true,
                TimeSpan.FromMinutes(5),
                TestContext.Current.CancellationToken);
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            var image = source.AddImage("v1", [64 << 10, 3 << 10]);
            var target = $"docker://{registry.Host}/e2e/auth/app:v1";

            var wrong = await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", tools.AuthFile, "-u", "alice", "-p", "wrong", registry.Host);
            Assert.NotEqual(0, wrong.ExitCode);
            var anonymous = await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), target);
            Assert.NotEqual(0, anonymous.ExitCode);

            await tools.SkopeoAsync("login", "--tls-verify=false", "--authfile", tools.AuthFile, "-u", "alice", "-p", "s3cret-Pass", registry.Host).EnsureSuccessAsync();
            await tools.SkopeoAsync("copy", "--dest-tls-verify=false", "--dest-authfile", tools.AuthFile, source.Reference("v1"), target).EnsureSuccessAsync();
            var back = Directory.CreateDirectory(Path.Combine(scratch, "back")).FullName;
            await tools.SkopeoAsync("copy", "--src-tls-verify=false", "--src-authfile", tools.AuthFile, target, $"oci:{back}:v1").EnsureSuccessAsync();
            Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }
}
