using k8s;
using k8s.Models;
using Microsoft.Extensions.Configuration;
using Wharf.Silo;

namespace Wharf.Tests.Deploy;

/// <summary>deploy/k8s: every manifest is a valid Kubernetes object, and the objects agree with the hosts and each other.</summary>
public sealed class KubernetesTests
{
    private const string Base = "deploy/k8s/base";
    private const string Overlay = "deploy/k8s/overlays/example";

    private static readonly Lazy<List<(string File, object Object)>> Loaded = new(() => LoadFolder(Base));

    private static List<(string File, object Object)> BaseObjects => Loaded.Value;

    private static List<(string File, object Object)> LoadFolder(string folder) =>
        Directory.GetFiles(Repo.PathOf(folder), "*.yaml")
            .Where(f => Path.GetFileName(f) != "kustomization.yaml")
            .SelectMany(f => LoadStrict(f).Select(o => (Path.GetFileName(f), o)))
            .ToList();

    private static List<object> LoadStrict(string file)
    {
        try
        {
            return KubernetesYaml.LoadAllFromString(File.ReadAllText(file), null, strict: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException($"{file} is not valid Kubernetes: {e.Message}", e);
        }
    }

    private static T One<T>(string name) => BaseObjects.Select(o => o.Object).OfType<T>().Single(o => ((IMetadata<V1ObjectMeta>)o!).Metadata.Name == name);

    private static IEnumerable<T> All<T>() => BaseObjects.Select(o => o.Object).OfType<T>();

    private static V1StatefulSet Silos => One<V1StatefulSet>("wharf-silo");

    private static V1Deployment Gateways => One<V1Deployment>("wharf-gateway");

    private static V1Container Container(V1PodTemplateSpec template) => template.Spec.Containers.Single();

    /// <summary>The environment a container gets: envFrom ConfigMaps/Secrets, then env (downward-API values as a sample IP).</summary>
    private static Dictionary<string, string> EnvironmentOf(V1Container container)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var from in container.EnvFrom ?? [])
        {
            if (from.ConfigMapRef is { } cm)
            {
                foreach (var (k, v) in One<V1ConfigMap>(cm.Name).Data)
                {
                    env[k] = v;
                }
            }
            if (from.SecretRef is { } sr)
            {
                var secret = One<V1Secret>(sr.Name);
                foreach (var (k, v) in secret.StringData ?? new Dictionary<string, string>())
                {
                    env[k] = v;
                }
            }
        }
        foreach (var e in container.Env ?? [])
        {
            env[e.Name] = e.Value ?? (e.ValueFrom?.FieldRef?.FieldPath == "status.podIP" ? "10.1.2.3" : throw new InvalidOperationException($"{e.Name}: unsupported valueFrom"));
        }
        return env;
    }

    [Fact(Timeout = 30_000)]
    public async Task Every_manifest_deserializes_strictly_into_the_kubernetes_api_types()
    {
        await Task.Yield();
        var objects = LoadFolder(Base).Concat(LoadFolder(Overlay)).ToList();
        Assert.All(objects, o => Assert.IsAssignableFrom<IKubernetesObject>(o.Object));
        var kinds = BaseObjects.Select(o => o.Object.GetType().Name).ToHashSet();
        foreach (var kind in new[] { nameof(V1StatefulSet), nameof(V1Deployment), nameof(V1Service), nameof(V1PodDisruptionBudget), nameof(V2HorizontalPodAutoscaler), nameof(V1NetworkPolicy), nameof(V1ConfigMap), nameof(V1Secret) })
        {
            Assert.Contains(kind, kinds);
        }
        // Strict mode is real: a misspelt field is refused.
        Assert.ThrowsAny<Exception>(() => KubernetesYaml.LoadAllFromString("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selectr: {}\n", null, strict: true));
    }

    [Fact(Timeout = 30_000)]
    public async Task Kustomizations_name_files_that_exist_and_patch_objects_the_base_defines()
    {
        await Task.Yield();
        foreach (var folder in new[] { Base, Overlay })
        {
            var k = Yaml.Load(Repo.Read($"{folder}/kustomization.yaml"));
            foreach (var resource in k.Get("resources").Strings())
            {
                var path = Path.Combine(Repo.PathOf(folder), resource);
                Assert.True(File.Exists(path) || File.Exists(Path.Combine(path, "kustomization.yaml")), $"{folder}: resource {resource} does not exist");
            }
        }
        var overlay = Yaml.Load(Repo.Read($"{Overlay}/kustomization.yaml"));
        var names = BaseObjects.Select(o => (o.Object.GetType().Name, ((IMetadata<V1ObjectMeta>)o.Object).Metadata.Name)).ToHashSet();
        foreach (YamlDotNet.RepresentationModel.YamlMappingNode patch in ((YamlDotNet.RepresentationModel.YamlSequenceNode)overlay.Get("patches")!).Children.Cast<YamlDotNet.RepresentationModel.YamlMappingNode>())
        {
            var o = KubernetesYaml.LoadAllFromString(Repo.Read($"{Overlay}/{patch.Str("path")}"), null, strict: true).Single();
            Assert.Contains((o.GetType().Name, ((IMetadata<V1ObjectMeta>)o).Metadata.Name), names);
        }
        var images = ((YamlDotNet.RepresentationModel.YamlSequenceNode)overlay.Get("images")!).Children.Select(i => i.Str("name")).ToHashSet();
        Assert.Equal(images, new HashSet<string?> { Container(Silos.Spec.Template).Image.Split(':')[0], Container(Gateways.Spec.Template).Image.Split(':')[0] });
        var replicas = ((YamlDotNet.RepresentationModel.YamlSequenceNode)overlay.Get("replicas")!).Children.Single(r => r.Str("name") == Silos.Metadata.Name);
        var config = KubernetesYaml.LoadAllFromString(Repo.Read($"{Overlay}/config-patch.yaml"), null, strict: true).OfType<V1ConfigMap>().Single();
        Assert.Equal(replicas.Str("count"), config.Data["Wharf__Cluster__BootstrapExpect"]);
        foreach (var secret in ((YamlDotNet.RepresentationModel.YamlSequenceNode)overlay.Get("secretGenerator")!).Children)
        {
            Assert.Contains(All<V1Secret>(), s => s.Metadata.Name == secret.Str("name"));
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Every_Wharf_variable_is_a_configuration_key_of_its_host_and_the_host_accepts_the_values()
    {
        await Task.Yield();
        foreach (var (template, host) in new[] { (Silos.Spec.Template, Host.Silo), (Gateways.Spec.Template, Host.Gateway) })
        {
            var env = EnvironmentOf(Container(template));
            foreach (var variable in env.Keys.Where(k => k.StartsWith("Wharf", StringComparison.OrdinalIgnoreCase)))
            {
                Assert.True(ConfigKeys.KeyOf(variable) is { } key && ConfigKeys.IsValid(host, key), $"{variable} is not a {host} configuration key");
            }
            Assert.Empty(ConfigKeys.Validate(host, env.Where(kv => ConfigKeys.KeyOf(kv.Key) is not null).ToDictionary()));
            var consul = new Uri(env["Wharf__Membership__Address"]);
            var service = One<V1Service>(consul.Host);
            Assert.Contains(service.Spec.Ports, p => p.Port == consul.Port);
        }
        var overlayConfig = KubernetesYaml.LoadAllFromString(Repo.Read($"{Overlay}/config-patch.yaml"), null, strict: true).OfType<V1ConfigMap>().Single();
        Assert.All(overlayConfig.Data.Keys, k => Assert.True(ConfigKeys.IsValid(Host.Silo, ConfigKeys.KeyOf(k)!), $"overlay: {k} is not a silo key"));
        var secretKeys = File.ReadAllLines(Repo.PathOf($"{Overlay}/secrets.env.example")).Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('=')[0]);
        Assert.All(secretKeys, k => Assert.True(ConfigKeys.IsValid(Host.Gateway, ConfigKeys.KeyOf(k)!) && ConfigKeys.IsValid(Host.Silo, ConfigKeys.KeyOf(k)!)));
    }

    [Fact(Timeout = 30_000)]
    public async Task Silo_pods_advertise_their_pod_ip_listen_where_probed_and_keep_data_on_their_own_volume()
    {
        await Task.Yield();
        var container = Container(Silos.Spec.Template);
        var env = EnvironmentOf(container);
        Assert.Equal("status.podIP", container.Env.Single(e => e.Name == "Wharf__Node__Address").ValueFrom.FieldRef.FieldPath);
        var ports = container.Ports.ToDictionary(p => p.Name, p => p.ContainerPort);
        Assert.Equal(DockerfileTests.Port(env["ASPNETCORE_URLS"]), ports["http"]);
        Assert.Equal(int.Parse(env["Wharf__Bytes__Port"]), ports["bytes"]);
        Assert.Equal(int.Parse(env["Wharf__Bytes__BulkPort"]), ports["bulk"]);
        Assert.Equal(int.Parse(env["Wharf__Orleans__SiloPort"]), ports["orleans-silo"]);
        Assert.Equal(int.Parse(env["Wharf__Orleans__GatewayPort"]), ports["orleans-gw"]);
        Assert.Equal(DockerfileTests.Exposed("silo").Order(), ports.Values.Order());
        Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
        Assert.Equal("/healthz", container.StartupProbe.HttpGet.Path);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        foreach (var probe in new[] { container.LivenessProbe, container.ReadinessProbe, container.StartupProbe })
        {
            Assert.Equal("http", probe.HttpGet.Port.Value);
        }
        var claim = Assert.Single(Silos.Spec.VolumeClaimTemplates);
        Assert.Equal(env["Wharf__DataPath"], container.VolumeMounts.Single(m => m.Name == claim.Metadata.Name).MountPath);
        Assert.NotNull(container.Lifecycle.PreStop);
        Assert.True(Silos.Spec.TemplateSpecGracePeriod() > container.Lifecycle.PreStop.Sleep.Seconds);
        var headless = One<V1Service>(Silos.Spec.ServiceName);
        Assert.Equal("None", headless.Spec.ClusterIP);
        Assert.Equal(int.Parse(env["Wharf__Cluster__BootstrapExpect"]), Silos.Spec.Replicas);
    }

    /// <summary>A drained silo must not exit: the kubelet would restart it before the scale-down (docs/operations.md).</summary>
    [Fact(Timeout = 30_000)]
    public async Task A_drained_silo_pod_stays_up_retired_rather_than_exiting_and_does_not_rejoin()
    {
        await Task.Yield();
        var env = EnvironmentOf(Container(Silos.Spec.Template));
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(env.Where(kv => ConfigKeys.KeyOf(kv.Key) is not null).Select(kv => KeyValuePair.Create(ConfigKeys.KeyOf(kv.Key)!, (string?)kv.Value)))
            .Build();
        var node = config.GetSection("Wharf").Get<WharfOptions>()!.Node;
        Assert.False(node.ExitWhenRemoved);
        Assert.False(node.Rejoin);
    }

    [Fact(Timeout = 30_000)]
    public async Task Gateway_pods_listen_where_probed_advertise_their_pod_ip_and_outlive_their_prestop()
    {
        await Task.Yield();
        var container = Container(Gateways.Spec.Template);
        var env = EnvironmentOf(container);
        Assert.Equal(DockerfileTests.Port(env["ASPNETCORE_URLS"]), container.Ports.Single(p => p.Name == "http").ContainerPort);
        Assert.Equal(DockerfileTests.Exposed("gateway"), [container.Ports.Single().ContainerPort]);
        Assert.Equal("status.podIP", container.Env.Single(e => e.Name == "Wharf__Gateway__AdvertisedAddress").ValueFrom.FieldRef.FieldPath);
        Assert.Equal("/healthz", container.LivenessProbe.HttpGet.Path);
        Assert.Equal("/readyz", container.ReadinessProbe.HttpGet.Path);
        // preStop + ASP.NET Core's default 30 s shutdown timeout fit in the grace period, so requests in flight finish.
        Assert.True(Gateways.Spec.Template.Spec.TerminationGracePeriodSeconds >= container.Lifecycle.PreStop.Sleep.Seconds + 30);
        var hpa = One<V2HorizontalPodAutoscaler>("wharf-gateway");
        Assert.Equal(("Deployment", Gateways.Metadata.Name), (hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name));
        Assert.NotNull(container.Resources.Requests["cpu"]);
        Assert.True(hpa.Spec.MinReplicas >= 2);
        Assert.Equal("None", One<V1Service>("wharf-gateway").Spec.SessionAffinity);
    }

    [Fact(Timeout = 30_000)]
    public async Task Selectors_match_the_pods_they_are_meant_for_and_service_ports_exist()
    {
        await Task.Yield();
        var workloads = new List<(string Name, IDictionary<string, string> Selector, V1PodTemplateSpec Template)>();
        workloads.AddRange(All<V1StatefulSet>().Select(s => (s.Metadata.Name, s.Spec.Selector.MatchLabels, s.Spec.Template)));
        workloads.AddRange(All<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Selector.MatchLabels, d.Spec.Template)));
        foreach (var (name, selector, template) in workloads)
        {
            Assert.True(Matches(selector, template.Metadata.Labels), $"{name}: its selector does not match its own pods");
        }
        foreach (var service in All<V1Service>())
        {
            var targets = workloads.Where(w => Matches(service.Spec.Selector, w.Template.Metadata.Labels)).ToList();
            Assert.True(targets.Count == 1, $"service {service.Metadata.Name} selects {targets.Count} workloads");
            var portNames = Container(targets[0].Template).Ports.Select(p => p.Name).ToHashSet();
            Assert.All(service.Spec.Ports, p => Assert.Contains(p.TargetPort.Value, portNames));
        }
        foreach (var pdb in All<V1PodDisruptionBudget>())
        {
            Assert.Single(workloads, w => Matches(pdb.Spec.Selector.MatchLabels, w.Template.Metadata.Labels));
        }
        Assert.Contains(All<V1PodDisruptionBudget>(), p => Matches(p.Spec.Selector.MatchLabels, Silos.Spec.Template.Metadata.Labels));
    }

    [Fact(Timeout = 30_000)]
    public async Task Network_policies_let_only_silos_and_gateways_reach_every_silo_port()
    {
        await Task.Yield();
        var policy = All<V1NetworkPolicy>().Single(p => Matches(p.Spec.PodSelector.MatchLabels, Silos.Spec.Template.Metadata.Labels));
        var siloPorts = Container(Silos.Spec.Template).Ports.Select(p => p.ContainerPort.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        var peers = policy.Spec.Ingress.Single(r => r.FromProperty.All(f => f.PodSelector is not null));
        Assert.Equal(siloPorts, peers.Ports.Select(p => p.Port.Value).Order().ToList());
        var allowed = peers.FromProperty.Select(f => f.PodSelector.MatchLabels).ToList();
        Assert.Contains(allowed, a => Matches(a, Silos.Spec.Template.Metadata.Labels));
        Assert.Contains(allowed, a => Matches(a, Gateways.Spec.Template.Metadata.Labels));
        Assert.All(allowed, a => Assert.True(Matches(a, Silos.Spec.Template.Metadata.Labels) || Matches(a, Gateways.Spec.Template.Metadata.Labels)));
        // Every other rule (monitoring) reaches the HTTP port only.
        foreach (var rule in policy.Spec.Ingress.Where(r => r != peers))
        {
            Assert.Equal(["5100"], rule.Ports.Select(p => p.Port.Value));
        }
        var consul = All<V1NetworkPolicy>().Single(p => p.Metadata.Name == "consul");
        Assert.All(consul.Spec.Ingress.SelectMany(r => r.FromProperty), f => Assert.Equal("wharf", f.PodSelector.MatchLabels["app.kubernetes.io/name"]));
    }

    [Fact(Timeout = 30_000)]
    public async Task Wharf_pods_run_as_the_images_non_root_user_with_a_read_only_root()
    {
        await Task.Yield();
        var uid = long.Parse(Dockerfile.Parse(Repo.Read("deploy/docker/Dockerfile")).Last("silo", "USER")!.Split(':')[0]);
        foreach (var template in new[] { Silos.Spec.Template, Gateways.Spec.Template })
        {
            Assert.True(template.Spec.SecurityContext.RunAsNonRoot);
            Assert.Equal(uid, template.Spec.SecurityContext.RunAsUser);
            var c = Container(template);
            Assert.True(c.SecurityContext.ReadOnlyRootFilesystem);
            Assert.False(c.SecurityContext.AllowPrivilegeEscalation);
            Assert.Contains(c.VolumeMounts, m => m.MountPath == "/tmp");
        }
        Assert.Equal(uid, Silos.Spec.Template.Spec.SecurityContext.FsGroup);
    }

    private static bool Matches(IDictionary<string, string>? selector, IDictionary<string, string>? labels) =>
        selector is { Count: > 0 } && labels is not null && selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);
    [Fact(Timeout = 10_000)]
    public async Task Clients_reach_gateways_over_tls_at_the_ingress_and_gateways_sign_tokens_with_a_mounted_key()
    {
        await Task.Yield();
        var ingress = One<V1Ingress>("wharf");
        var tls = Assert.Single(ingress.Spec.Tls);
        Assert.Equal("wharf-tls", tls.SecretName);
        var path = Assert.Single(Assert.Single(ingress.Spec.Rules).Http.Paths);
        Assert.Equal(tls.Hosts.Single(), ingress.Spec.Rules.Single().Host);
        var service = One<V1Service>("wharf-gateway");
        Assert.Equal(service.Metadata.Name, path.Backend.Service.Name);
        Assert.Contains(service.Spec.Ports, p => p.Name == path.Backend.Service.Port.Name);
        Assert.Equal("0", ingress.Metadata.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]);

        var container = Container(Gateways.Spec.Template);
        var env = container.Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal("Token", env["Wharf__Auth__Mode"]);
        Assert.True(System.Net.IPNetwork.TryParse(env["Wharf__Auth__TrustedProxies__0"], out _));
        // The signing key is a file in a volume mounted from the wharf-token-key Secret, which holds that file.
        var keyPath = env["Wharf__Auth__Token__SigningKey"];
        var mount = container.VolumeMounts.Single(m => keyPath.StartsWith(m.MountPath + "/", StringComparison.Ordinal));
        Assert.True(mount.ReadOnlyProperty);
        var volume = Gateways.Spec.Template.Spec.Volumes.Single(v => v.Name == mount.Name);
        var secret = One<V1Secret>(volume.Secret.SecretName);
        Assert.Contains(keyPath[(mount.MountPath.Length + 1)..], secret.StringData.Keys);
        Assert.True(One<V1Secret>("wharf-secrets").StringData.ContainsKey("Wharf__Auth__Bootstrap__Password"));
    }
}

internal static class StatefulSetExtensions
{
    public static long TemplateSpecGracePeriod(this V1StatefulSetSpec spec) => spec.Template.Spec.TerminationGracePeriodSeconds ?? 30;
}
