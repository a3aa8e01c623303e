namespace Wharf.Silo;

/// <summary>The <c>Wharf</c> configuration section (environment form <c>Wharf__Section__Key</c>).</summary>
public sealed class WharfOptions
{
    public const string Section = "Wharf";

    /// <summary>Folder holding the node's RocksDB, blob files and upload parts.</summary>
    public string DataPath { get; set; } = "./data";

    public string ClusterId { get; set; } = "wharf";

    public ReplicationOptions Replication { get; set; } = new();

    public MembershipOptions Membership { get; set; } = new();

    public OrleansPorts Orleans { get; set; } = new();

    public UploadOptions Uploads { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(DataPath))
        {
            yield return "Wharf:DataPath must name a folder";
        }
        if (string.IsNullOrWhiteSpace(ClusterId))
        {
            yield return "Wharf:ClusterId must not be empty";
        }
        if (Replication.Factor < 1 || Replication.WriteQuorum < 1 || Replication.WriteQuorum > Replication.Factor)
        {
            yield return $"Wharf:Replication needs 1 <= WriteQuorum ({Replication.WriteQuorum}) <= Factor ({Replication.Factor})";
        }
        if (!string.Equals(Membership.Provider, "Localhost", StringComparison.OrdinalIgnoreCase))
        {
            yield return $"Wharf:Membership:Provider '{Membership.Provider}' is not available in this build; use Localhost";
        }
        if (Uploads.ExpireAfter <= TimeSpan.Zero || Uploads.SweepInterval <= TimeSpan.Zero)
        {
            yield return "Wharf:Uploads:ExpireAfter and SweepInterval must be positive";
        }
        if (Orleans.SiloPort is < 0 or > 65535 || Orleans.GatewayPort is < 0 or > 65535)
        {
            yield return "Wharf:Orleans ports must be 0 (pick a free one) or a TCP port";
        }
    }
}

public sealed class ReplicationOptions
{
    public int Factor { get; set; } = 1;

    public int WriteQuorum { get; set; } = 1;
}

public sealed class MembershipOptions
{
    public string Provider { get; set; } = "Localhost";

    public string? Address { get; set; }

    public string? Token { get; set; }
}

/// <summary>Orleans' own ports; 0 picks a free loopback port (its defaults 11111/30000 collide between processes).</summary>
public sealed class OrleansPorts
{
    public int SiloPort { get; set; }

    public int GatewayPort { get; set; }
}

public sealed class UploadOptions
{
    /// <summary>An upload untouched this long is abandoned and removed.</summary>
    public TimeSpan ExpireAfter { get; set; } = TimeSpan.FromHours(24);

    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}
