using System.Text.Json;
using System.Text.RegularExpressions;

namespace Wharf.Tests.Deploy;

/// <summary>The image definition agrees with the hosts: ports, health endpoint, user, entry points, configuration keys.</summary>
public sealed class DockerfileTests
{
    private static readonly Dockerfile File = Dockerfile.Parse(Repo.Read("deploy/docker/Dockerfile"));

    public static int Port(string url) => new Uri(url.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)).Port;

    [Fact(Timeout = 10_000)]
    public async Task Runtime_base_is_a_build_argument_and_the_build_uses_the_dotnet_10_sdk()
    {
        await Task.Yield();
        Assert.Contains(File.Preamble, i => i.Keyword == "ARG" && i.Arguments.StartsWith("RUNTIME_BASE=", StringComparison.Ordinal));
        Assert.Contains(File.Preamble, i => i.Keyword == "ARG" && i.Arguments == "SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0");
        Assert.Equal("${SDK_IMAGE}", File.Named("build").From);
        Assert.Equal("${RUNTIME_BASE}", File.Named("runtime").From);
        Assert.Equal("runtime", File.Named("silo").From);
        Assert.Equal("runtime", File.Named("gateway").From);
        // Every file the build stage copies exists in the checkout.
        foreach (var copy in File.Named("build").Instructions.Where(i => i.Keyword == "COPY"))
        {
            foreach (var source in copy.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1])
            {
                Assert.True(System.IO.File.Exists(Repo.PathOf(source)) || Directory.Exists(Repo.PathOf(source)), $"COPY {source}: not in the checkout");
            }
        }
    }

    [Theory(Timeout = 10_000)]
    [InlineData("silo")]
    [InlineData("gateway")]
    public async Task Both_images_run_as_a_numeric_non_root_user_with_oci_labels(string target)
    {
        await Task.Yield();
        var user = File.Last(target, "USER");
        Assert.NotNull(user);
        var uid = int.Parse(user.Split(':')[0]);
        Assert.NotEqual(0, uid);
        var labels = string.Join(" ", File.Effective(target).Where(i => i.Keyword == "LABEL").Select(i => i.Arguments));
        foreach (var label in new[] { "title", "description", "source", "licenses", "version", "revision" })
        {
            Assert.Contains($"org.opencontainers.image.{label}=", labels, StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Silo_image_exposes_exactly_its_configured_ports_and_keeps_data_on_a_volume()
    {
        await Task.Yield();
        var env = File.Env("silo");
        // The image leaves only the membership backend to the deployment: with it, the host accepts the image's settings.
        var withMembership = env.Where(kv => ConfigKeys.KeyOf(kv.Key) is not null).ToDictionary();
        withMembership["Wharf__Membership__Provider"] = "Consul";
        withMembership["Wharf__Membership__Address"] = "http://consul:8500";
        Assert.Empty(ConfigKeys.Validate(Host.Silo, withMembership));
        Assert.All(env.Keys.Where(k => ConfigKeys.KeyOf(k) is not null), k => Assert.True(ConfigKeys.IsValid(Host.Silo, ConfigKeys.KeyOf(k)!), $"{k} is not a silo configuration key"));
        Assert.Equal("Silo", env["Wharf__Role"]);
        var http = Port(env["ASPNETCORE_URLS"]);
        Assert.Equal(Repo.SiloDefaultHttpPort, http);
        var expected = new[] { http, int.Parse(env["Wharf__Bytes__Port"]), int.Parse(env["Wharf__Bytes__BulkPort"]), int.Parse(env["Wharf__Orleans__SiloPort"]), int.Parse(env["Wharf__Orleans__GatewayPort"]) };
        Assert.All(expected, p => Assert.NotEqual(0, p));
        Assert.Equal(expected.Order(), Exposed("silo").Order());
        var volume = JsonSerializer.Deserialize<string[]>(File.Last("silo", "VOLUME")!)!;
        Assert.Equal([env["Wharf__DataPath"]], volume);
        Assert.Equal("""["dotnet", "/app/Wharf.Silo.dll"]""", File.Last("silo", "ENTRYPOINT"));
    }

    [Fact(Timeout = 10_000)]
    public async Task Gateway_image_exposes_its_http_port_and_holds_no_volume()
    {
        await Task.Yield();
        var env = File.Env("gateway");
        Assert.All(env.Keys.Where(k => ConfigKeys.KeyOf(k) is not null && k != "Wharf__DataPath"), k => Assert.True(ConfigKeys.IsValid(Host.Gateway, ConfigKeys.KeyOf(k)!), $"{k} is not a gateway configuration key"));
        var http = Port(env["ASPNETCORE_URLS"]);
        Assert.Equal(Repo.GatewayDefaultHttpPort, http);
        Assert.Equal([http], Exposed("gateway"));
        Assert.DoesNotContain(File.Named("gateway").Instructions, i => i.Keyword == "VOLUME");
        Assert.Equal("""["dotnet", "/app/Wharf.Gateway.dll"]""", File.Last("gateway", "ENTRYPOINT"));
    }

    [Theory(Timeout = 10_000)]
    [InlineData("silo")]
    [InlineData("gateway")]
    public async Task Health_check_probes_healthz_on_the_port_the_host_listens_on_with_the_cli_in_the_image(string target)
    {
        await Task.Yield();
        var check = File.Named(target).Instructions.Single(i => i.Keyword == "HEALTHCHECK").Arguments;
        var url = Regex.Match(check, "\"(http://[^\"]+)\"").Groups[1].Value;
        Assert.Equal("/healthz", new Uri(url).AbsolutePath);
        Assert.Equal(Port(File.Env(target)["ASPNETCORE_URLS"]), new Uri(url).Port);
        Assert.Contains("\"/app/Wharf.Cli.dll\", \"probe\"", check, StringComparison.Ordinal);
        // The entry points and the probe are the assemblies the projects build.
        Assert.Equal("Wharf.Cli", typeof(Wharf.Cli.WharfCli).Assembly.GetName().Name);
        Assert.Equal("Wharf.Silo", typeof(Wharf.Silo.WharfOptions).Assembly.GetName().Name);
        Assert.Equal("Wharf.Gateway", typeof(Wharf.Gateway.GatewayOptions).Assembly.GetName().Name);
    }

    [Fact(Timeout = 30_000)]
    public async Task Probe_command_exits_zero_on_a_healthy_endpoint_and_one_with_one_line_otherwise()
    {
        var listener = new System.Net.HttpListener();
        var port = FreePort();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        var serve = Task.Run(async () =>
        {
            for (var i = 0; i < 2; i++)
            {
                var c = await listener.GetContextAsync();
                c.Response.StatusCode = c.Request.Url!.AbsolutePath == "/healthz" ? 200 : 503;
                c.Response.Close();
            }
        });
        var errors = new StringWriter();
        Assert.Equal(0, await Wharf.Cli.WharfCli.RunAsync(["probe", $"http://127.0.0.1:{port}/healthz"], errors: errors));
        Assert.Equal(1, await Wharf.Cli.WharfCli.RunAsync(["probe", $"http://127.0.0.1:{port}/readyz"], errors: errors));
        await serve;
        listener.Stop();
        Assert.Single(errors.ToString().Trim().Split('\n'));
        Assert.Contains("503", errors.ToString(), StringComparison.Ordinal);
    }

    public static List<int> Exposed(string target) =>
        File.Effective(target).Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(int.Parse).ToList();

    public static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }
}
