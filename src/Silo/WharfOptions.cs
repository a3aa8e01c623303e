using Wharf.Membership;

namespace Wharf.Silo;

/// <summary>The <c>Wharf</c> configuration section (environment form <c>Wharf__Section__Key</c>).</summary>
public sealed class WharfOptions
{
    public const string Section = "Wharf";

    /// <summary>Folder holding the node's RocksDB, blob files and upload parts.</summary>
    public string DataPath { get; set; } = "./data";

    public string ClusterId { get; set; } = "wharf";

    /// <summary><c>AllInOne</c> (a silo with the gateway co-hosted; the default) or <c>Silo</c> (a cluster member).</summary>
    public string Role { get; set; } = AllInOneRole;

    public const string AllInOneRole = "AllInOne";
    public const string SiloRole = "Silo";

    public bool IsAllInOne => string.Equals(Role, AllInOneRole, StringComparison.OrdinalIgnoreCase);

    public NodeOptions Node { get; set; } = new();

    public BytesOptions Bytes { get; set; } = new();

    public ClusterFormationOptions Cluster { get; set; } = new();

    public ReplicationOptions Replication { get; set; } = new();

    public MembershipOptions Membership { get; set; } = new();

    public OrleansPorts Orleans { get; set; } = new();

    public UploadOptions Uploads { get; set; } = new();

    public ScrubOptions Scrub { get; set; } = new();

    public RepairOptions Repair { get; set; } = new();

    /// <summary>The audit log: silos drop hours older than its retention (gateways read the rest of the section).</summary>
    public Gateway.Audit.AuditOptions Audit { get; set; } = new();

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
        else if (2 * Replication.WriteQuorum <= Replication.Factor)
        {
            // Two write quorums must share an owner, or a new leader could miss an acknowledged change.
            yield return $"Wharf:Replication needs WriteQuorum ({Replication.WriteQuorum}) to be more than half of Factor ({Replication.Factor})";
        }
        if (!IsAllInOne && !string.Equals(Role, SiloRole, StringComparison.OrdinalIgnoreCase))
        {
            yield return $"Wharf:Role must be AllInOne or Silo, not '{Role}'";
        }
        foreach (var problem in Audit.Validate())
        {
            yield return problem;
        }
        foreach (var problem in Membership.Validate())
        {
            yield return problem;
        }
        if (!IsAllInOne && Membership.IsLocalhost)
        {
            yield return "a Silo in a cluster needs Wharf:Membership:Provider Consul or Redis (Localhost is for the all-in-one)";
        }
        if (!System.Net.IPAddress.TryParse(Node.Address, out _))
        {
            yield return $"Wharf:Node:Address must be an IP address other nodes reach this one at, not '{Node.Address}'";
        }
        if (Node.Weight <= 0)
        {
            yield return "Wharf:Node:Weight must be positive";
        }
        if (Bytes.Port is < 0 or > 65535)
        {
            yield return "Wharf:Bytes:Port must be 0 (pick a free one) or a TCP port";
        }
        if (Bytes.BulkPort is < -1 or > 65535)
        {
            yield return "Wharf:Bytes:BulkPort must be 0 (pick a free one), -1 (none) or a TCP port";
        }
        if (Uploads.ExpireAfter <= TimeSpan.Zero || Uploads.SweepInterval <= TimeSpan.Zero)
        {
            yield return "Wharf:Uploads:ExpireAfter and SweepInterval must be positive";
        }
        if (Scrub.BytesPerSecond <= 0 || Scrub.Interval <= TimeSpan.Zero || Scrub.StartDelay < TimeSpan.Zero)
        {
            yield return "Wharf:Scrub:BytesPerSecond and Interval must be positive (StartDelay not negative)";
        }
        if (Repair.BytesPerSecond <= 0 || Repair.Interval <= TimeSpan.Zero || Repair.VerifyInterval <= TimeSpan.Zero || Repair.StartDelay < TimeSpan.Zero)
        {
            yield return "Wharf:Repair:BytesPerSecond, Interval and VerifyInterval must be positive (StartDelay not negative)";
        }
        if (Cluster.CoordinatorInterval <= TimeSpan.Zero || Cluster.DownGrace <= TimeSpan.Zero)
        {
            yield return "Wharf:Cluster:CoordinatorInterval and DownGrace must be positive";
        }
        if (Orleans.SiloPort is < 0 or > 65535 || Orleans.GatewayPort is < 0 or > 65535)
        {
            yield return "Wharf:Orleans ports must be 0 (pick a free one) or a TCP port";
        }
    }
}

public sealed class ReplicationOptions
{
    /// <summary>R: copies of every record and blob. Unset: 3 for a cluster's silos, 1 for the all-in-one.</summary>
    public int Factor { get; set; } = 1;

    /// <summary>W: owners that must hold a write before it is acknowledged. Unset: a majority of R.</summary>
    public int WriteQuorum { get; set; } = 1;

    /// <summary>
    /// A log leader's read lease: it answers reads from its own replica this long after a quorum last confirmed it,
    /// and a new leader changes nothing for this long after taking over (docs/architecture.md "Repository logs").
    /// </summary>
    public TimeSpan LeaderLease { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a leader waits for one owner's answer before counting it as no answer.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public Replication.LeaderTimings Timings() => new(LeaderLease, CallTimeout, TimeSpan.FromMilliseconds(50));
}

public sealed class NodeOptions
{
    /// <summary>The IP address other silos and gateways reach this node at.</summary>
    public string Address { get; set; } = "127.0.0.1";

    public string Zone { get; set; } = "";

    public double Weight { get; set; } = 1;

    /// <summary>The most blob bytes this node holds (0: no limit but the disk); writes past it answer as a full disk does.</summary>
    public long CapacityBytes { get; set; }

    /// <summary>
    /// Write blob and upload files with direct I/O (O_DIRECT), bypassing the page cache, where the filesystem takes it
    /// (probed at start; tmpfs before Linux 6.6 and some network filesystems do not): a silo's CPU per GB pushed was
    /// mostly the copy into the page cache. false writes through the page cache.
    /// </summary>
    public bool DirectWrites { get; set; } = true;

    /// <summary>
    /// What a drained node does once it is Removed: exit (true, the default), or stay up retired (false, for
    /// Kubernetes): Orleans, the store and the byte service stop, <c>/healthz</c> answers 200 and <c>/readyz</c> 503
    /// until the process is stopped. Either way it is retired (<see cref="RetiredMarker"/>) and a restart does not rejoin.
    /// </summary>
    public bool ExitWhenRemoved { get; set; } = true;

    /// <summary>Bring a retired node back: it joins the placement view again as a new node (Joining) and the marker goes.</summary>
    public bool Rejoin { get; set; }

    /// <summary>
    /// The longest a stop (SIGTERM, SIGINT) may take before the node closes its store and exits anyway (<see cref="StopWatchdog"/>):
    /// below the orchestrator's grace period (compose 30 s, Kubernetes 60 s), which ends in SIGKILL. 0 waits for ever.
    /// </summary>
    public int StopTimeoutSeconds { get; set; } = 25;
}

public sealed class BytesOptions
{
    /// <summary>The gRPC byte service's port (HTTP/2 without TLS); 0 picks a free one.</summary>
    public int Port { get; set; }

    /// <summary>
    /// The bulk port (HTTP/1.1 without TLS, on the node's address) that gateways read and write blob bytes on
    /// (<c>BulkBytes</c>); 0 picks a free one, -1 serves none (gateways then use the gRPC port for everything).
    /// </summary>
    public int BulkPort { get; set; }
}

public sealed class ClusterFormationOptions
{
    /// <summary>How many nodes form the cluster; a node joining after that many own data joins as Joining.</summary>
    public int BootstrapExpect { get; set; } = 3;

    /// <summary>How often every silo looks whether it coordinates, and the coordinator changes the view.</summary>
    public TimeSpan CoordinatorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a node may be Down (its lease ran out) before the coordinator marks it Removed and its shards move.</summary>
    public TimeSpan DownGrace { get; set; } = TimeSpan.FromMinutes(15);

    public Membership.Topology.CoordinatorSettings Coordinator() => new(CoordinatorInterval, DownGrace);
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

/// <summary>The background scrubber (docs/architecture.md, "Scrubbing"): re-hashes this node's blobs.</summary>
public sealed class ScrubOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Read budget of a pass (blob bytes hashed plus bytes fetched for repair), so client traffic keeps priority.</summary>
    public long BytesPerSecond { get; set; } = 32L * 1024 * 1024;

    /// <summary>Time from the end of one full pass to the start of the next.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Wait after start before the first pass, so a starting node serves first.</summary>
    public TimeSpan StartDelay { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Anti-entropy between owners and the hand-off of copies to their owners (docs/architecture.md, "Repair").</summary>
public sealed class RepairOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>Time from the end of one pass (compare with every peer, copy what is missing) to the start of the next.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often every log's records are re-derived from its entries and checked against the store.</summary>
    public TimeSpan VerifyInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Budget for blob bytes copied by repair (in and out), so client traffic keeps priority.</summary>
    public long BytesPerSecond { get; set; } = 64L * 1024 * 1024;

    /// <summary>Wait after start before the first pass, so a starting node serves first.</summary>
    public TimeSpan StartDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the marker of a finished, forgotten log (an upload) is kept. Longer than any node may be down and
    /// still rejoin with its data: a node away longer could copy the log back, so forget it and let it rejoin empty.
    /// </summary>
    public TimeSpan ForgottenRetention { get; set; } = TimeSpan.FromDays(14);

    /// <summary>
    /// Wait after a view change before a pass acts on it (syncing gained shards), so that every node has seen the change
    /// (views are polled every second) and old owners refuse writes from leaders made before it.
    /// </summary>
    public TimeSpan TransitionSettle { get; set; } = TimeSpan.FromSeconds(3);
}
