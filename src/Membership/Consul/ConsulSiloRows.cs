using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
using Orleans.Runtime;

namespace Wharf.Membership.Consul;

/// <summary>
/// How the membership table lies on Consul keys, as Orleans' own Consul provider lays it
/// (dotnet/orleans, <c>src/Orleans.Clustering.Consul/SerializableMembershipTypes.cs</c>), so a Consul holding either
/// reads the same:
/// <code>
///   [{root}/]orleans/{clusterId}/version                          the table version number; its ModifyIndex is the version's etag
///   [{root}/]orleans/{clusterId}/{siloAddress parsable}           one row per silo (JSON); its ModifyIndex is the row's etag
///   [{root}/]orleans/{clusterId}/{siloAddress parsable}/iamalive  the silo's last heartbeat (a JSON date)
/// </code>
/// The heartbeat lives in a key of its own so that frequent <c>UpdateIAmAlive</c> writes do not change the row's
/// ModifyIndex and so do not fail other silos' check-and-set updates of the row.
/// </summary>
internal sealed class ConsulSiloRows(string clusterId, string? rootFolder)
{
    private const string VersionSuffix = "version";
    private const string IAmAliveSuffix = "iamalive";

    /// <summary>The table's folder with its trailing '/', so that cluster "a" never reads cluster "ab".</summary>
    public string Prefix { get; } = (string.IsNullOrEmpty(rootFolder) ? "" : rootFolder.TrimEnd('/') + "/") + "orleans/" + clusterId + "/";

    public string VersionKey => Prefix + VersionSuffix;

    public string RowKey(SiloAddress silo) => Prefix + silo.ToParsableString();

    public string IAmAliveKey(SiloAddress silo) => RowKey(silo) + "/" + IAmAliveSuffix;

    public static byte[] VersionValue(TableVersion version) => Encoding.UTF8.GetBytes(version.Version.ToString(CultureInfo.InvariantCulture));

    public static ulong EtagIndex(string? etag) =>
        ulong.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? index : 0;

    /// <summary>Rebuilds the table (rows with their etags, and the version) from a recursive read of <see cref="Prefix"/>.</summary>
    public MembershipTableData Assemble(IReadOnlyList<ConsulKvPair> pairs)
    {
        var version = new TableVersion(0, "0");
        var rows = new Dictionary<string, ConsulKvPair>(StringComparer.Ordinal);
        var alive = new Dictionary<string, ConsulKvPair>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            if (!pair.Key.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }
            var rest = pair.Key[Prefix.Length..];
            if (rest == VersionSuffix)
            {
                version = new TableVersion(ParseVersion(pair.Value), pair.ModifyIndex.ToString(CultureInfo.InvariantCulture));
            }
            else if (rest.EndsWith("/" + IAmAliveSuffix, StringComparison.Ordinal))
            {
                alive[rest[..^(IAmAliveSuffix.Length + 1)]] = pair;
            }
            else if (!rest.Contains('/'))
            {
                rows[rest] = pair;
            }
        }
        var members = new List<Tuple<MembershipEntry, string>>(rows.Count);
        foreach (var (name, row) in rows)
        {
            var entry = ToEntry(SiloAddress.FromParsableString(name), row, alive.GetValueOrDefault(name));
            members.Add(Tuple.Create(entry, row.ModifyIndex.ToString(CultureInfo.InvariantCulture)));
        }
        return new MembershipTableData(members, version);
    }

    public static byte[] RowValue(MembershipEntry entry) => JsonSerializer.SerializeToUtf8Bytes(new SiloRow
    {
        Hostname = entry.HostName,
        ProxyPort = entry.ProxyPort,
        StartTime = entry.StartTime,
        Status = entry.Status,
        SiloName = entry.SiloName,
        SuspectingSilos = entry.SuspectTimes?.Select(s => new SuspectingSilo { Id = s.Item1.ToParsableString(), Time = s.Item2 }).ToList(),
    }, SiloRowJson.Default.SiloRow);

    public static byte[] IAmAliveValue(DateTime time) => JsonSerializer.SerializeToUtf8Bytes(time, SiloRowJson.Default.DateTime);

    private static MembershipEntry ToEntry(SiloAddress silo, ConsulKvPair row, ConsulKvPair? alive)
    {
        var value = JsonSerializer.Deserialize(row.Value ?? "{}"u8.ToArray(), SiloRowJson.Default.SiloRow) ?? new SiloRow();
        return new MembershipEntry
        {
            SiloAddress = silo,
            HostName = value.Hostname ?? "",
            SiloName = value.SiloName ?? "",
            Status = value.Status,
            ProxyPort = value.ProxyPort,
            StartTime = value.StartTime,
            // A row written before its first heartbeat has no iamalive key: Orleans' provider reads its start time.
            IAmAliveTime = alive?.Value is { Length: > 0 } a ? JsonSerializer.Deserialize(a, SiloRowJson.Default.DateTime) : value.StartTime,
            SuspectTimes = value.SuspectingSilos?.Select(s => Tuple.Create(SiloAddress.FromParsableString(s.Id), s.Time)).ToList(),
            RoleName = "",
        };
    }

    private static int ParseVersion(byte[]? value) =>
        value is { Length: > 0 } && int.TryParse(Encoding.UTF8.GetString(value), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
}

/// <summary>A row's JSON, with the field names of Orleans' <c>ConsulSiloRegistration</c> (status as its number).</summary>
internal sealed class SiloRow
{
    public string? Hostname { get; set; }

    public int ProxyPort { get; set; }

    public DateTime StartTime { get; set; }

    public SiloStatus Status { get; set; }

    public string? SiloName { get; set; }

    public List<SuspectingSilo>? SuspectingSilos { get; set; }

    /// <summary>Written by Orleans versions whose MembershipEntry carries metadata; 10.4.2's does not, so Wharf leaves it out.</summary>
    public Dictionary<string, string>? Metadata { get; set; }
}

internal sealed class SuspectingSilo
{
    public string Id { get; set; } = "";

    public DateTime Time { get; set; }
}

[JsonSerializable(typeof(SiloRow))]
[JsonSerializable(typeof(DateTime))]
internal sealed partial class SiloRowJson : JsonSerializerContext;
