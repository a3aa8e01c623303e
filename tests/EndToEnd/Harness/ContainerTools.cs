namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>
/// skopeo, podman and buildah with private configuration, so nothing on the host (registries.conf, policy.json,
/// auth files, storage, the blob-info cache where the tool allows) changes what a test sees. Storage is vfs under a
/// private root: no overlay mounts, no daemon.
/// </summary>
public sealed class ContainerTools : IDisposable
{
    public ContainerTools()
    {
        Root = TempFolders.Create("wharf-e2e-tools-");
        foreach (var dir in new[] { "home", "config", "data", "cache", "run", "tmp", "registries.d", "storage", "runroot", "libpod-tmp" })
        {
            Directory.CreateDirectory(Path.Combine(Root, dir));
        }
        RegistriesConf = Write("registries.conf", "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n");
        PolicyJson = Write("policy.json", """{"default":[{"type":"insecureAcceptAnything"}]}""");
        AuthFile = Write("auth.json", """{"auths":{}}""");
        var storageConf = Write("storage.conf",
            $"[storage]\ndriver = \"vfs\"\ngraphroot = \"{Path.Combine(Root, "storage")}\"\nrunroot = \"{Path.Combine(Root, "runroot")}\"\n");
        var containersConf = Write("containers.conf", "[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n");
        Environment = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(Root, "home"),
            ["XDG_CONFIG_HOME"] = Path.Combine(Root, "config"),
            ["XDG_DATA_HOME"] = Path.Combine(Root, "data"),
            ["XDG_CACHE_HOME"] = Path.Combine(Root, "cache"),
            ["XDG_RUNTIME_DIR"] = Path.Combine(Root, "run"),
            ["TMPDIR"] = Path.Combine(Root, "tmp"),
            ["CONTAINERS_REGISTRIES_CONF"] = RegistriesConf,
            ["REGISTRIES_CONFIG_PATH"] = RegistriesConf,
            ["CONTAINERS_STORAGE_CONF"] = storageConf,
            ["CONTAINERS_CONF"] = containersConf,
            ["REGISTRY_AUTH_FILE"] = AuthFile,
        };
    }

    public string Root { get; }
    public string RegistriesConf { get; }
    public string PolicyJson { get; }
    public string AuthFile { get; }
    public IReadOnlyDictionary<string, string> Environment { get; }

    /// <summary>Runs skopeo with the private registries.conf, registries.d and policy.</summary>
    public Task<CommandResult> SkopeoAsync(params string[] args) =>
        ExternalProcess.RunAsync("skopeo",
            ["--registries-conf", RegistriesConf, "--registries.d", Path.Combine(Root, "registries.d"), "--policy", PolicyJson, .. args],
            Environment, cancellationToken: TestContext.Current.CancellationToken);

    /// <summary>Runs podman on private vfs storage; nothing touches /var/lib/containers or /run/libpod.</summary>
    public Task<CommandResult> PodmanAsync(params string[] args) =>
        ExternalProcess.RunAsync("podman", [.. StorageArgs, "--tmpdir", Path.Combine(Root, "libpod-tmp"), "--events-backend", "none", "--cgroup-manager", "cgroupfs", .. args],
            Environment, cancellationToken: TestContext.Current.CancellationToken);

    /// <summary>Runs buildah on the same private vfs storage as podman.</summary>
    public Task<CommandResult> BuildahAsync(params string[] args) =>
        ExternalProcess.RunAsync("buildah", [.. StorageArgs, .. args], Environment, cancellationToken: TestContext.Current.CancellationToken);

    private string[] StorageArgs => ["--storage-driver", "vfs", "--root", Path.Combine(Root, "storage"), "--runroot", Path.Combine(Root, "runroot")];

    public void Dispose() => TempFolders.TryDelete(Root);

    private string Write(string name, string text)
    {
        var path = Path.Combine(Root, name);
        File.WriteAllText(path, text);
        return path;
    }
}
