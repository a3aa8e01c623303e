using System.Diagnostics;
using System.Text.Json;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>
/// Real clients over HTTPS to an all-in-one in Wharf:Tls:Mode=Development, trusting its CA only through each client's
/// own CA option (skopeo, podman and buildah <c>--cert-dir</c>, ctr <c>--tlscacert</c>): no <c>--tls-verify=false</c>,
/// nothing written to /etc. skopeo, podman and buildah log in, then push and pull; ctr pulls with <c>--user</c>; a wrong
/// password is refused. Once in Basic mode (htpasswd) and once in Token mode (the gateway's own token service).
/// </summary>
public sealed class TlsClientTests
{
    // `htpasswd -nbB alice 's3cret-Pass'` (apache2-utils), verbatim.
    private const string Htpasswd = "alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG\n";

    [Fact(Timeout = 300_000)]
    public Task Basic_mode_over_TLS_skopeo_podman_buildah_log_in_push_and_pull_and_ctr_pulls_with_user() => ClientsOverTlsAsync("Basic");

    [Fact(Timeout = 300_000)]
    public Task Token_mode_over_TLS_skopeo_podman_buildah_log_in_push_and_pull_and_ctr_pulls_with_user() => ClientsOverTlsAsync("Token");

    [Fact(Timeout = 120_000)]
    public async Task Unusable_certificate_files_stop_the_all_in_one_at_start_with_one_line_and_exit_code_2()
    {
        var scratch = TempFolders.Create("wharf-e2e-tls-bad-");
        try
        {
            var result = await ExternalProcess.RunAsync("dotnet",
                [RegistryProcess.SiloAssemblyPath, "--urls", $"https://127.0.0.1:{RegistryProcess.FreePort()}", $"--Wharf:DataPath={scratch}/data",
                 $"--Wharf:Tls:Certificate={scratch}/missing.crt", $"--Wharf:Tls:Key={scratch}/missing.key"],
                timeout: TimeSpan.FromSeconds(60), cancellationToken: TestContext.Current.CancellationToken);
            Assert.Equal(2, result.ExitCode);
            var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"{scratch}/missing.crt", line);
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }

    private static async Task ClientsOverTlsAsync(string mode)
    {
        var ct = TestContext.Current.CancellationToken;
        var started = Stopwatch.StartNew();
        var scratch = TempFolders.Create($"wharf-e2e-tls-{mode.ToLowerInvariant()}-");
        try
        {
            var htpasswd = Path.Combine(scratch, "htpasswd");
            await File.WriteAllTextAsync(htpasswd, Htpasswd, ct);
            await using var registry = await RegistryProcess.StartNodeAsync(
                RegistryProcess.SiloAssemblyPath,
                [$"--Wharf:Auth:Mode={mode}", $"--Wharf:Auth:Htpasswd={htpasswd}", "--Wharf:Tls:Mode=Development"],
                "healthz",
                passDataPath: true,
                TimeSpan.FromMinutes(5),
                ct,
                scheme: "https");
            // containers/image reads every *.crt in --cert-dir as a CA and wants a *.cert beside every *.key, so the
            // CA goes into a folder of its own (as it would into /etc/containers/certs.d/HOST:PORT/).
            var certDir = Directory.CreateDirectory(Path.Combine(scratch, "certs.d", registry.Host)).FullName;
            File.Copy(registry.DevelopmentCaPath, Path.Combine(certDir, "ca.crt"));
            using var tools = new ContainerTools();
            var source = new OciLayout(Directory.CreateDirectory(Path.Combine(scratch, "src")).FullName);
            var image = source.AddImage("v1", [64 << 10, 3 << 10]);
            var repository = $"e2e/tls-{mode.ToLowerInvariant()}";

            // Without the CA, TLS verification fails (the clients do not fall back to plain HTTP on a TLS port).
            var untrusted = await tools.SkopeoAsync("login", "--authfile", tools.AuthFile, "-u", "alice", "-p", "s3cret-Pass", registry.Host);
            Assert.NotEqual(0, untrusted.ExitCode);
            Assert.True(untrusted.StdErr.Contains("certificate", StringComparison.OrdinalIgnoreCase), untrusted.StdErr);
            var wrong = await tools.SkopeoAsync("login", "--cert-dir", certDir, "--authfile", tools.AuthFile, "-u", "alice", "-p", "wrong", registry.Host);
            Assert.NotEqual(0, wrong.ExitCode);
            Assert.True(wrong.StdErr.Contains("invalid username/password", StringComparison.OrdinalIgnoreCase), wrong.StdErr);
            var wrongPodman = await tools.PodmanAsync("login", "--cert-dir", certDir, "-u", "alice", "-p", "wrong", registry.Host);
            Assert.NotEqual(0, wrongPodman.ExitCode);

            // skopeo: login, then copy up and back.
            await tools.SkopeoAsync("login", "--cert-dir", certDir, "--authfile", tools.AuthFile, "-u", "alice", "-p", "s3cret-Pass", registry.Host).EnsureSuccessAsync();
            var skopeoTarget = $"docker://{registry.Host}/{repository}/skopeo:v1";
            await tools.SkopeoAsync("copy", "--dest-cert-dir", certDir, "--dest-authfile", tools.AuthFile, source.Reference("v1"), skopeoTarget).EnsureSuccessAsync();
            var back = Directory.CreateDirectory(Path.Combine(scratch, "back")).FullName;
            await tools.SkopeoAsync("copy", "--src-cert-dir", certDir, "--src-authfile", tools.AuthFile, skopeoTarget, $"oci:{back}:v1").EnsureSuccessAsync();
            Assert.Equal(image.Manifest.Digest, OciLayout.ReadTag(back, "v1").Digest);

            // podman: a fresh login (the auth file emptied first), push, remove, pull back.
            await File.WriteAllTextAsync(tools.AuthFile, """{"auths":{}}""", ct);
            await tools.PodmanAsync("login", "--cert-dir", certDir, "-u", "alice", "-p", "s3cret-Pass", registry.Host).EnsureSuccessAsync();
            var imageId = image.Config.Digest[7..];
            await tools.PodmanAsync("pull", "--quiet", source.Reference("v1")).EnsureSuccessAsync();
            var podmanReference = $"{registry.Host}/{repository}/podman:v1";
            await tools.PodmanAsync("tag", imageId, podmanReference).EnsureSuccessAsync();
            await tools.PodmanAsync("push", "--cert-dir", certDir, podmanReference).EnsureSuccessAsync();
            await tools.PodmanAsync("rmi", "--force", podmanReference).EnsureSuccessAsync();
            var pulled = await tools.PodmanAsync("pull", "--quiet", "--cert-dir", certDir, podmanReference).EnsureSuccessAsync();
            Assert.Equal(imageId, pulled.StdOut.Trim().Split('\n')[^1]);

            // buildah: a fresh login, push of the same image under another name.
            await File.WriteAllTextAsync(tools.AuthFile, """{"auths":{}}""", ct);
            await tools.BuildahAsync("login", "--cert-dir", certDir, "-u", "alice", "-p", "s3cret-Pass", registry.Host).EnsureSuccessAsync();
            var buildahReference = $"{registry.Host}/{repository}/buildah:v1";
            await tools.BuildahAsync("push", "--quiet", "--cert-dir", certDir, imageId, $"docker://{buildahReference}").EnsureSuccessAsync();
            var config = await tools.SkopeoAsync("inspect", "--config", "--cert-dir", certDir, "--creds", "alice:s3cret-Pass", $"docker://{buildahReference}").EnsureSuccessAsync();
            using (var json = JsonDocument.Parse(config.StdOut))
            {
                Assert.Equal(image.DiffIds, json.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()!).ToList());
            }

            // containerd: ctr pulls with --user, trusting the CA through --tlscacert; a wrong password is refused.
            // ctr 1.6 talks plain HTTP to 127.0.0.1 and localhost unless a hosts.toml names the https server.
            var hostsDir = Path.Combine(scratch, "containerd-hosts");
            Directory.CreateDirectory(Path.Combine(hostsDir, registry.Host));
            await File.WriteAllTextAsync(Path.Combine(hostsDir, registry.Host, "hosts.toml"),
                $"server = \"https://{registry.Host}\"\n\n[host.\"https://{registry.Host}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", ct);
            await using var containerd = await ContainerdProcess.StartAsync(ct);
            string[] ctrTls = ["--hosts-dir", hostsDir, "--tlscacert", registry.DevelopmentCaPath, "--snapshotter", "native"];
            var ctrWrong = await containerd.CtrAsync(["images", "pull", .. ctrTls, "--user", "alice:wrong", $"{registry.Host}/{repository}/skopeo:v1"]);
            Assert.NotEqual(0, ctrWrong.ExitCode);
            Assert.True(ctrWrong.StdErr.Contains("401 Unauthorized", StringComparison.Ordinal), ctrWrong.StdErr);
            await containerd.CtrAsync(["images", "pull", .. ctrTls, "--user", "alice:s3cret-Pass", $"{registry.Host}/{repository}/skopeo:v1"]).EnsureSuccessAsync();
            var listed = await containerd.CtrAsync("images", "ls").EnsureSuccessAsync();
            Assert.Contains(image.Manifest.Digest, listed.StdOut);
            TestContext.Current.SendDiagnosticMessage($"{mode} over TLS: {started.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
            TempFolders.TryDelete(scratch);
        }
    }
}
