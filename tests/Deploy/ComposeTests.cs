using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace Wharf.Tests.Deploy;

/// <summary>deploy/compose: the file is valid, and everything in it agrees with the hosts and with itself.</summary>
public sealed partial class ComposeTests
{
    private const string Folder = "deploy/compose";
    private static readonly YamlMappingNode File = Yaml.Load(Repo.Read($"{Folder}/docker-compose.yml"));
    private static readonly List<(string Key, YamlNode Value)> Services = File.Map("services").Entries().ToList();

    private static IEnumerable<(string Name, YamlNode Service)> Of(string target) =>
        Services.Where(s => s.Value.Get("build")?.Str("target") == target).Select(s => (s.Key, s.Value));

    private static int HttpPort(YamlNode service) => DockerfileTests.Port(service.Environment()["ASPNETCORE_URLS"]);

    [Fact(Timeout = 60_000)]
    public async Task Compose_file_is_valid_for_docker_compose()
    {
        var compose = FindOnPath("docker-compose");
        if (compose is null)
        {
            Assert.Skip("docker-compose is not installed (test.sh installs it from Debian)");
        }
        var psi = new ProcessStartInfo(compose, ["-f", Repo.PathOf($"{Folder}/docker-compose.yml"), "config", "-q"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            WorkingDirectory = Repo.PathOf(Folder),
            // What .env supplies on a real host (the file refuses to start without them).
            Environment = { ["WHARF_CLUSTER_SECRET"] = "compose-test-cluster-secret-0123456789abcdef", ["WHARF_CONSUL_TOKEN"] = "6f1c1b0e-2c55-4c38-9d55-1d2b4a7e9f00", ["WHARF_ADMIN_PASSWORD"] = "compose-admin-Pass-1" },
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, "docker-compose config: " + await stderr);
    }

    [Fact(Timeout = 10_000)]
    public async Task Cluster_is_consul_three_silos_two_gateways_a_load_balancer_jaeger_prometheus_and_grafana()
    {
        await Task.Yield();
        Assert.Equal(3, Of("silo").Count());
        Assert.Equal(2, Of("gateway").Count());
        foreach (var name in new[] { "consul", "lb", "jaeger", "prometheus", "grafana" })
        {
            Assert.Contains(Services, s => s.Key == name);
        }
        Assert.Equal("true", Services.Single(s => s.Key == "jaeger").Value.Environment()["COLLECTOR_OTLP_ENABLED"]);
        var jaegerPorts = Services.Single(s => s.Key == "jaeger").Value.Get("ports").Strings().ToList();
        Assert.Contains("4317:4317", jaegerPorts);
        Assert.Contains("4318:4318", jaegerPorts);
    }

    [Theory(Timeout = 10_000)]
    [InlineData("silo", Host.Silo)]
    [InlineData("gateway", Host.Gateway)]
    public async Task Every_Wharf_variable_is_a_configuration_key_of_its_host_and_the_host_accepts_the_values(string target, Host host)
    {
        await Task.Yield();
        foreach (var (name, service) in Of(target))
        {
            var env = service.Environment();
            foreach (var variable in env.Keys.Where(k => k.StartsWith("Wharf", StringComparison.OrdinalIgnoreCase)))
            {
                Assert.True(ConfigKeys.KeyOf(variable) is { } key && ConfigKeys.IsValid(host, key), $"{name}: {variable} is not a {host} configuration key");
            }
            Assert.Empty(ConfigKeys.Validate(host, env.Where(kv => ConfigKeys.KeyOf(kv.Key) is not null).ToDictionary()));
            Assert.Equal("Consul", env["Wharf__Membership__Provider"]);
            var consul = new Uri(env["Wharf__Membership__Address"]);
            Assert.Contains(Services, s => s.Key == consul.Host);
            Assert.Equal(8500, consul.Port);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Every_silo_and_gateway_gets_the_cluster_secret_and_the_consul_token_consul_enforces()
    {
        await Task.Yield();
        foreach (var (name, service) in Of("silo").Concat(Of("gateway")))
        {
            var env = service.Environment();
            Assert.True(env.TryGetValue("Wharf__Cluster__Secret", out var secret) && secret.StartsWith("${WHARF_CLUSTER_SECRET:?", StringComparison.Ordinal), $"{name}: no required cluster secret");
            Assert.True(env.TryGetValue("Wharf__Membership__Token", out var token) && token.StartsWith("${WHARF_CONSUL_TOKEN:?", StringComparison.Ordinal), $"{name}: no required Consul token");
        }
        var consul = Services.Single(s => s.Key == "consul").Value.Environment();
        using var acl = JsonDocument.Parse(consul["CONSUL_LOCAL_CONFIG"]);
        var settings = acl.RootElement.GetProperty("acl");
        Assert.True(settings.GetProperty("enabled").GetBoolean());
        Assert.Equal("deny", settings.GetProperty("default_policy").GetString());
        Assert.StartsWith("${WHARF_CONSUL_TOKEN:?", settings.GetProperty("tokens").GetProperty("initial_management").GetString());
        var example = Repo.Read($"{Folder}/.env.example");
        Assert.Contains("WHARF_CLUSTER_SECRET=", example);
        Assert.Contains("WHARF_CONSUL_TOKEN=", example);
    }

    [Fact(Timeout = 10_000)]
    public async Task Keys_read_outside_the_options_classes_are_read_by_the_host_they_are_given_to()
    {
        await Task.Yield();
        foreach (var (_, key, source) in ConfigKeys.DirectReads)
        {
            Assert.Contains($"\"{key}\"", Repo.Read(source), StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Silos_advertise_their_own_fixed_address_and_fixed_ports_the_image_exposes()
    {
        await Task.Yield();
        var subnet = File.Map("networks").Map("wharf").Map("ipam").Get("config") as YamlSequenceNode;
        var prefix = ((YamlMappingNode)subnet!.Children[0]).Str("subnet")!;
        var addresses = new HashSet<string>();
        foreach (var (name, service) in Of("silo").Concat(Of("gateway")))
        {
            var ip = service.Map("networks").Map("wharf").Str("ipv4_address")!;
            Assert.True(InSubnet(IPAddress.Parse(ip), prefix), $"{name}: {ip} is outside {prefix}");
            Assert.True(addresses.Add(ip), $"{name}: {ip} is used twice");
        }
        var exposed = DockerfileTests.Exposed("silo");
        foreach (var (name, service) in Of("silo"))
        {
            var env = service.Environment();
            Assert.Equal(service.Map("networks").Map("wharf").Str("ipv4_address"), env["Wharf__Node__Address"]);
            Assert.Equal("Silo", env["Wharf__Role"]);
            var ports = new[] { HttpPort(service), int.Parse(env["Wharf__Bytes__Port"]), int.Parse(env["Wharf__Bytes__BulkPort"]), int.Parse(env["Wharf__Orleans__SiloPort"]), int.Parse(env["Wharf__Orleans__GatewayPort"]) };
            Assert.Equal(exposed.Order(), ports.Order());
            Assert.Contains(service.Get("volumes").Strings(), v => v.EndsWith(":" + env["Wharf__DataPath"], StringComparison.Ordinal));
        }
        foreach (var (name, service) in Of("gateway"))
        {
            // The gateway registers this address with Consul for its health check; the default (127.0.0.1) would be
            // Consul's own container.
            Assert.Equal(service.Map("networks").Map("wharf").Str("ipv4_address"), service.Environment()["Wharf__Gateway__AdvertisedAddress"]);
            Assert.Equal(DockerfileTests.Exposed("gateway"), [HttpPort(service)]);
        }
        Assert.Equal(3, int.Parse(Of("silo").First().Service.Environment()["Wharf__Cluster__BootstrapExpect"]));
    }

    [Fact(Timeout = 10_000)]
    public async Task Wharf_containers_have_a_read_only_root_with_only_tmp_and_the_data_volume_writable()
    {
        await Task.Yield();
        foreach (var (name, service) in Of("silo").Concat(Of("gateway")))
        {
            Assert.True(service.Str("read_only") == "true", $"{name}: root filesystem is writable");
            Assert.Equal(["/tmp"], service.Get("tmpfs").Strings());
        }
    }

    [Theory(Timeout = 10_000)]
    [InlineData("silo")]
    [InlineData("gateway")]
    public async Task Health_checks_probe_healthz_on_the_port_each_host_listens_on(string target)
    {
        await Task.Yield();
        foreach (var (name, service) in Of(target))
        {
            var test = service.Map("healthcheck").Get("test").Strings().ToList();
            var url = new Uri(test.Single(t => t.StartsWith("http://", StringComparison.Ordinal)));
            Assert.Equal("/healthz", url.AbsolutePath);
            Assert.True(HttpPort(service) == url.Port, $"{name}: health check on {url.Port}, host listens on {HttpPort(service)}");
            Assert.Equal(["CMD", "dotnet", "/app/Wharf.Cli.dll", "probe"], test.Take(4));
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Load_balancer_upstreams_are_exactly_the_gateways_without_sticky_sessions()
    {
        await Task.Yield();
        var lb = Services.Single(s => s.Key == "lb").Value;
        var mount = lb.Get("volumes").Strings().Single(v => v.Contains("nginx.conf", StringComparison.Ordinal)).Split(':')[0];
        var conf = System.IO.File.ReadAllText(Path.Combine(Repo.PathOf(Folder), mount));
        var upstream = UpstreamBlock().Match(conf).Groups[1].Value;
        var servers = ServerLine().Matches(upstream).Select(m => m.Groups[1].Value).Order().ToList();
        var gateways = Of("gateway").Select(g => $"{g.Name}:{HttpPort(g.Service)}").Order().ToList();
        Assert.Equal(gateways, servers);
        foreach (var sticky in new[] { "ip_hash", "hash ", "sticky", "least_conn" })
        {
            Assert.DoesNotContain(sticky, upstream, StringComparison.Ordinal);
        }
        Assert.Contains("client_max_body_size 0;", conf, StringComparison.Ordinal);
        Assert.Contains("proxy_request_buffering off;", conf, StringComparison.Ordinal);
        Assert.Contains("proxy_pass http://wharf_gateways;", conf, StringComparison.Ordinal);
    }

    [Fact(Timeout = 10_000)]
    public async Task Clients_reach_the_registry_over_tls_at_the_balancer_and_gateways_require_tokens_it_forwards_for()
    {
        await Task.Yield();
        var lb = Services.Single(s => s.Key == "lb").Value;
        var mount = lb.Get("volumes").Strings().Single(v => v.Contains("nginx.conf", StringComparison.Ordinal)).Split(':')[0];
        var conf = System.IO.File.ReadAllText(Path.Combine(Repo.PathOf(Folder), mount));
        Assert.Contains("listen 443 ssl;", conf, StringComparison.Ordinal);
        Assert.Contains("ssl_protocols TLSv1.2 TLSv1.3;", conf, StringComparison.Ordinal);
        Assert.Contains("proxy_set_header X-Forwarded-Proto $scheme;", conf, StringComparison.Ordinal);
        Assert.DoesNotContain("listen 80", conf, StringComparison.Ordinal);
        // The certificate nginx names is in the folder the compose file mounts there.
        var tlsMount = lb.Get("volumes").Strings().Single(v => v.EndsWith(":/etc/nginx/tls:ro", StringComparison.Ordinal));
        Assert.Contains("ssl_certificate     /etc/nginx/tls/server.crt;", conf, StringComparison.Ordinal);
        Assert.Equal("./tls", tlsMount.Split(':')[0]);
        Assert.Contains("5000:443", lb.Get("ports").Strings());
        var lbAddress = lb.Map("networks").Map("wharf").Str("ipv4_address");
        var secretFile = File.Map("secrets").Map("wharf_token_key").Str("file");
        Assert.Equal("./secrets/token-signing.pem", secretFile);
        foreach (var (name, service) in Of("gateway"))
        {
            var env = service.Environment();
            Assert.Equal("Token", env["Wharf__Auth__Mode"]);
            Assert.Equal(lbAddress, env["Wharf__Auth__TrustedProxies__0"]);
            Assert.Equal("/run/secrets/wharf_token_key", env["Wharf__Auth__Token__SigningKey"]);
            Assert.Contains("wharf_token_key", service.Get("secrets").Strings());
            Assert.StartsWith("${WHARF_ADMIN_PASSWORD:?", env["Wharf__Auth__Bootstrap__Password"], StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Prometheus_scrapes_the_metrics_path_of_every_silo_and_gateway()
    {
        await Task.Yield();
        var prometheus = Services.Single(s => s.Key == "prometheus").Value;
        var mount = prometheus.Get("volumes").Strings().Single(v => v.Contains("prometheus.yml", StringComparison.Ordinal)).Split(':')[0];
        var config = Yaml.Load(System.IO.File.ReadAllText(Path.Combine(Repo.PathOf(Folder), mount)));
        var targets = new List<string>();
        foreach (YamlMappingNode job in ((YamlSequenceNode)config.Get("scrape_configs")!).Children.Cast<YamlMappingNode>())
        {
            if (job.Str("job_name")!.StartsWith("wharf-", StringComparison.Ordinal))
            {
                Assert.Equal("/metrics", job.Str("metrics_path"));
                foreach (YamlMappingNode sc in ((YamlSequenceNode)job.Get("static_configs")!).Children.Cast<YamlMappingNode>())
                {
                    targets.AddRange(sc.Get("targets").Strings());
                }
            }
        }
        var hosts = Of("silo").Concat(Of("gateway")).Select(h => $"{h.Name}:{HttpPort(h.Service)}").Order();
        Assert.Equal(hosts, targets.Order());
    }

    [Fact(Timeout = 10_000)]
    public async Task Grafana_is_provisioned_from_files_in_the_repository()
    {
        await Task.Yield();
        var grafana = Services.Single(s => s.Key == "grafana").Value;
        var mounts = grafana.Get("volumes").Strings().Where(v => v.StartsWith("./", StringComparison.Ordinal))
            .Select(v => v.Split(':')).ToDictionary(p => p[1], p => Path.Combine(Repo.PathOf(Folder), p[0]));
        var provisioning = mounts["/etc/grafana/provisioning"];
        var datasources = Yaml.Load(System.IO.File.ReadAllText(Path.Combine(provisioning, "datasources", "datasources.yml")));
        var uids = ((YamlSequenceNode)datasources.Get("datasources")!).Children.Select(d => d.Str("uid")).ToHashSet();
        var providers = Yaml.Load(System.IO.File.ReadAllText(Path.Combine(provisioning, "dashboards", "dashboards.yml")));
        var path = ((YamlSequenceNode)providers.Get("providers")!).Children[0].Map("options").Str("path")!;
        var dashboards = Directory.GetFiles(mounts[path], "*.json");
        Assert.NotEmpty(dashboards);
        foreach (var file in dashboards)
        {
            using var doc = JsonDocument.Parse(await System.IO.File.ReadAllTextAsync(file));
            foreach (var panel in doc.RootElement.GetProperty("panels").EnumerateArray())
            {
                Assert.Contains(panel.GetProperty("datasource").GetProperty("uid").GetString(), uids);
                Assert.NotEmpty(panel.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()));
            }
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Every_file_the_compose_file_mounts_or_builds_from_exists()
    {
        await Task.Yield();
        foreach (var (name, service) in Services)
        {
            foreach (var volume in service.Get("volumes").Strings().Where(v => v.StartsWith('.')))
            {
                var source = Path.Combine(Repo.PathOf(Folder), volume.Split(':')[0]);
                Assert.True(System.IO.File.Exists(source) || Directory.Exists(source), $"{name}: {source} does not exist");
            }
            if (service.Get("build") is { } build)
            {
                var context = Path.GetFullPath(Path.Combine(Repo.PathOf(Folder), build.Str("context")!));
                Assert.True(System.IO.File.Exists(Path.Combine(context, build.Str("dockerfile")!)));
                Assert.Contains(Dockerfile.Parse(Repo.Read("deploy/docker/Dockerfile")).Stages, s => s.Name == build.Str("target"));
            }
        }
    }

    private static bool InSubnet(IPAddress ip, string cidr)
    {
        var parts = cidr.Split('/');
        var network = IPNetwork.Parse(cidr);
        return network.Contains(ip) && parts.Length == 2;
    }

    private static string? FindOnPath(string name) =>
        (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(System.IO.File.Exists);

    [GeneratedRegex(@"upstream\s+wharf_gateways\s*\{([^}]*)\}")]
    private static partial Regex UpstreamBlock();

    [GeneratedRegex(@"^\s*server\s+([^\s;]+)", RegexOptions.Multiline)]
    private static partial Regex ServerLine();
}
