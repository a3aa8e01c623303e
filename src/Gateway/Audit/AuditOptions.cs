namespace Wharf.Gateway.Audit;

/// <summary><c>Wharf:Audit</c>: read by gateways (what to record, where) and silos (how long the cluster keeps it).</summary>
public sealed class AuditOptions
{
    public const string Section = "Wharf:Audit";

    /// <summary>Record events at all.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A file each gateway appends the events to as JSON lines, besides the cluster's copy; none by default.</summary>
    public string? File { get; set; }

    /// <summary>Keep events in the cluster this long; older hours are dropped by the silos.</summary>
    public int RetentionDays { get; set; } = 90;

    /// <summary>Events waiting to be written; past it new events are dropped and counted, never waited for.</summary>
    public int QueueCapacity { get; set; } = 100_000;

    /// <summary>Also record successful manifest reads (every pull); failures and every change are recorded regardless.</summary>
    public bool ManifestReads { get; set; } = true;

    public IEnumerable<string> Validate()
    {
        if (RetentionDays is < 1 or > 3650)
        {
            yield return $"{Section}:RetentionDays must be in [1, 3650]";
        }
        if (QueueCapacity is < 100 or > 10_000_000)
        {
            yield return $"{Section}:QueueCapacity must be in [100, 10000000]";
        }
    }
}
