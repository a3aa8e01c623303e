using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Wharf.Gateway;
using Wharf.Silo;

namespace Wharf.Tests.Deploy;

/// <summary>The checkout's files, and what the hosts accept, derived from their code rather than copied from docs.</summary>
public static partial class Repo
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Cluster.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The HTTP port a silo (Role=Silo) listens on when <c>urls</c> is not set, read from SiloHost.</summary>
    public static int SiloDefaultHttpPort => int.Parse(SiloDefaultUrl().Match(Read("src/Silo/SiloHost.cs")).Groups[1].Value);

    /// <summary>The HTTP port a gateway listens on when <c>urls</c> is not set (and TLS is off), read from GatewayTls.</summary>
    public static int GatewayDefaultHttpPort => int.Parse(GatewayDefaultUrl().Match(Read("src/Gateway/Tls/GatewayTls.cs")).Groups[1].Value);

    [GeneratedRegex("""\?\? "http://127\.0\.0\.1:(\d+)"\)\s*\.Split""")]
    private static partial Regex SiloDefaultUrl();

    [GeneratedRegex("""DefaultPlainUrl = "http://127\.0\.0\.1:(\d+)";""")]
    private static partial Regex GatewayDefaultUrl();
}

public enum Host
{
    Silo,
    Gateway,
}

/// <summary>
/// Every configuration key a host reads, from its options classes by reflection (WharfOptions for silos, GatewayOptions
/// for gateways, MembershipOptions in both), Orleans' option names under <c>Wharf:Liveness</c>
/// (ClusterMembershipOptions on silos, the client's GatewayOptions on gateways), and the few keys a host reads
/// directly from IConfiguration, each checked to be in that host's source.
/// </summary>
public static class ConfigKeys
{
    private static readonly Dictionary<Host, HashSet<string>> Keys = new()
    {
        // ManifestCacheOptions (Wharf:Gateway) is bound by both hosts: silos grant the tag leases, gateways cache.
        [Host.Silo] = Build(typeof(WharfOptions), typeof(Orleans.Configuration.ClusterMembershipOptions), ["urls", "Wharf:Kestrel:BlockKiB", .. ClusterSecretKeys, .. CacheKeys, .. GatewaySections]),
        [Host.Gateway] = Build(typeof(GatewayOptions), typeof(Orleans.Configuration.GatewayOptions), ["urls", "Wharf:Gateway:AdvertisedAddress", "Wharf:Kestrel:BlockKiB", .. ClusterSecretKeys, .. CacheKeys, .. GatewaySections]),
    };

    private static string[] ClusterSecretKeys => ["Wharf:Cluster:Secret", "Wharf:Cluster:SecretFile"];

    /// <summary>Sections the gateway's API binds in both hosts (the all-in-one co-hosts it): auth, TLS, audit, limits.</summary>
    private static string[] GatewaySections
    {
        get
        {
            var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            Walk(typeof(Wharf.Gateway.Auth.AuthOptions), Wharf.Gateway.Auth.AuthOptions.Section, keys);
            Walk(typeof(Wharf.Gateway.Tls.TlsOptions), Wharf.Gateway.Tls.TlsOptions.Section, keys);
            Walk(typeof(Wharf.Gateway.Audit.AuditOptions), Wharf.Gateway.Audit.AuditOptions.Section, keys);
            Walk(typeof(Wharf.Gateway.Abuse.RateLimitOptions), Wharf.Gateway.Abuse.RateLimitOptions.Section, keys);
            Walk(typeof(Wharf.Gateway.Abuse.ConnectionLimitOptions), Wharf.Gateway.Abuse.ConnectionLimitOptions.Section, keys);
            return [.. keys];
        }
    }

    private static string[] CacheKeys =>
        [.. typeof(Wharf.Gateway.Caching.ManifestCacheOptions).GetProperties().Where(p => p.CanWrite).Select(p => "Wharf:Gateway:" + p.Name)];

    /// <summary>Keys read outside the options classes, with the file that reads them (checked by a test).</summary>
    public static readonly (Host Host, string Key, string Source)[] DirectReads =
    [
        (Host.Gateway, "Wharf:Gateway:AdvertisedAddress", "src/Gateway/GatewayHost.cs"),
        (Host.Silo, "Wharf:Cluster:BootstrapExpect", "src/Silo/SiloHost.cs"),
        (Host.Silo, "Wharf:Cluster:Secret", "src/Membership/Security/ClusterSecret.cs"),
        (Host.Gateway, "Wharf:Cluster:Secret", "src/Membership/Security/ClusterSecret.cs"),
        (Host.Silo, "Wharf:Cluster:SecretFile", "src/Membership/Security/ClusterSecret.cs"),
        (Host.Silo, "Wharf:Kestrel:BlockKiB", "src/Gateway/Hosting/LargeBlockMemoryPool.cs"),
        (Host.Gateway, "Wharf:Kestrel:BlockKiB", "src/Gateway/Hosting/LargeBlockMemoryPool.cs"),
    ];

    public static IReadOnlySet<string> For(Host host) => Keys[host];

    /// <summary><c>Wharf__A__B</c> to <c>Wharf:A:B</c>; <c>ASPNETCORE_URLS</c> to <c>urls</c>; null for variables that are not configuration.</summary>
    public static string? KeyOf(string variable)
    {
        if (variable.Equals("ASPNETCORE_URLS", StringComparison.OrdinalIgnoreCase))
        {
            return "urls";
        }
        return variable.StartsWith("Wharf__", StringComparison.OrdinalIgnoreCase) ? variable.Replace("__", ":", StringComparison.Ordinal) : null;
    }

    /// <summary>Whether the host reads <paramref name="key"/>; list items (<c>…:Policies:0:Subjects:1</c>) count as their list's keys.</summary>
    public static bool IsValid(Host host, string key) =>
        Keys[host].Contains(System.Text.RegularExpressions.Regex.Replace(key, @":\d+(?=:|$)", ":*"));

    /// <summary>Binds the variables as the host would and returns its own validation problems.</summary>
    public static List<string> Validate(Host host, IReadOnlyDictionary<string, string> variables)
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(variables.Select(kv => KeyValuePair.Create(ConfigKeys.KeyOf(kv.Key) ?? kv.Key, (string?)kv.Value)))
            .Build();
        return host == Host.Silo
            ? (config.GetSection("Wharf").Get<WharfOptions>() ?? new WharfOptions()).Validate().ToList()
            : (config.GetSection("Wharf").Get<GatewayOptions>() ?? new GatewayOptions()).Validate().ToList();
    }

    private static HashSet<string> Build(Type options, Type liveness, string[] extra)
    {
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        Walk(options, "Wharf", keys);
        foreach (var p in liveness.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            keys.Add("Wharf:Liveness:" + p.Name);
        }
        keys.UnionWith(extra);
        return keys;
    }

    private static void Walk(Type type, string prefix, HashSet<string> keys)
    {
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
        {
            var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            var key = prefix + ":" + p.Name;
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) || t.IsArray)
            {
                // A list: its items are KEY:0, KEY:1, … (IsValid maps each index to *).
                var item = t.IsArray ? t.GetElementType()! : t.GetGenericArguments()[0];
                if (item == typeof(string) || item.IsPrimitive)
                {
                    keys.Add(key + ":*");
                }
                else
                {
                    Walk(item, key + ":*", keys);
                }
                continue;
            }
            if (t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(TimeSpan) || t == typeof(decimal) || t == typeof(Uri))
            {
                keys.Add(key);
            }
            else
            {
                Walk(t, key, keys);
            }
        }
    }
}
