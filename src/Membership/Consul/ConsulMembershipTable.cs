using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Wharf.Membership.Consul;

/// <summary>
/// Orleans' membership table on Consul's KV store, laid out as Orleans' own Consul provider lays it
/// (<see cref="ConsulSiloRows"/>). Every change of a row is one <c>/v1/txn</c> that check-and-sets both the row
/// (at the etag the caller read, 0 to create) and the version key (at the version's etag), so a row and the table
/// version move together or not at all, and of two writers holding the same etags exactly one wins.
/// </summary>
public sealed class ConsulMembershipTable : IMembershipTable, IDisposable
{
    private readonly ILogger<ConsulMembershipTable> _logger;
    private readonly ConsulClient _consul;
    private readonly ConsulClusteringOptions _options;
    private readonly ConsulSiloRows _rows;

    public ConsulMembershipTable(ILogger<ConsulMembershipTable> logger, IOptions<ConsulClusteringOptions> options, IOptions<ClusterOptions> cluster)
    {
        _logger = logger;
        _options = options.Value;
        _consul = _options.CreateClient();
        _rows = new ConsulSiloRows(cluster.Value.ClusterId, _options.KvRootFolder);
    }

    public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion, CancellationToken.None);

    /// <summary>
    /// Reads the table once, so an unreachable Consul or a refused token stops the silo at start with a clear error.
    /// The version key needs no creating: the first insert creates it (check-and-set at index 0).
    /// </summary>
    public async Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken)
    {
        var data = await ReadAllAsync(cancellationToken);
        _logger.LogInformation("Consul membership at {Address} under {Prefix}: {Count} rows, table version {Version}",
            _consul.Address, _rows.Prefix, data.Members.Count, data.Version.Version);
    }

    public Task<MembershipTableData> ReadAll() => ReadAllAsync(CancellationToken.None);

    public async Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken)
    {
        var result = await _consul.ListAsync(_rows.Prefix, cancellationToken: cancellationToken);
        return _rows.Assemble(result.Pairs);
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key, CancellationToken.None);

    public async Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken)
    {
        var all = await ReadAllAsync(cancellationToken);
        var row = all.Members.Where(m => m.Item1.SiloAddress.Equals(key)).ToList();
        return new MembershipTableData(row, all.Version);
    }

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion, CancellationToken.None);

    public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken) =>
        CommitAsync(entry, tableVersion, [
            // cas at index 0 creates only: an existing row fails the whole transaction.
            ConsulTxnOp.Kv(ConsulKvVerb.Cas, _rows.RowKey(entry.SiloAddress), ConsulSiloRows.RowValue(entry), 0),
            ConsulTxnOp.Kv(ConsulKvVerb.Set, _rows.IAmAliveKey(entry.SiloAddress), ConsulSiloRows.IAmAliveValue(entry.IAmAliveTime)),
        ], "insert", cancellationToken);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) =>
        UpdateRowAsync(entry, etag, tableVersion, CancellationToken.None);

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken)
    {
        var index = ConsulSiloRows.EtagIndex(etag);
        if (index == 0)
        {
            // An update never creates: a cas at 0 would.
            return Task.FromResult(false);
        }
        return CommitAsync(entry, tableVersion, [
            ConsulTxnOp.Kv(ConsulKvVerb.Cas, _rows.RowKey(entry.SiloAddress), ConsulSiloRows.RowValue(entry), index),
        ], "update", cancellationToken);
    }

    public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry, CancellationToken.None);

    /// <summary>
    /// Writes only the heartbeat key, in a transaction that first reads the row: a silo whose row was removed
    /// gets an error instead of leaving an orphan heartbeat behind.
    /// </summary>
    public async Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken)
    {
        var result = await _consul.TxnAsync([
            ConsulTxnOp.Kv(ConsulKvVerb.Get, _rows.RowKey(entry.SiloAddress)),
            ConsulTxnOp.Kv(ConsulKvVerb.Set, _rows.IAmAliveKey(entry.SiloAddress), ConsulSiloRows.IAmAliveValue(entry.IAmAliveTime)),
        ], cancellationToken);
        if (!result.Committed)
        {
            throw new ConsulException($"Consul has no membership row for silo {entry.SiloAddress}: {Describe(result)}");
        }
    }

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate, CancellationToken.None);

    /// <summary>Removes rows of dead silos whose last heartbeat is older than <paramref name="beforeDate"/>.</summary>
    public async Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken)
    {
        var before = beforeDate.UtcDateTime;
        var data = await ReadAllAsync(cancellationToken);
        foreach (var (entry, etag) in data.Members)
        {
            if (entry.Status != SiloStatus.Dead || entry.IAmAliveTime.ToUniversalTime() >= before)
            {
                continue;
            }
            // Exact keys, not a recursive delete of the row key: that prefix would also match a silo whose
            // generation begins with this one's digits.
            var result = await _consul.TxnAsync([
                ConsulTxnOp.Kv(ConsulKvVerb.DeleteCas, _rows.RowKey(entry.SiloAddress), index: ConsulSiloRows.EtagIndex(etag)),
                ConsulTxnOp.Kv(ConsulKvVerb.Delete, _rows.IAmAliveKey(entry.SiloAddress)),
            ], cancellationToken);
            if (!result.Committed)
            {
                _logger.LogDebug("Left the row of {Silo}: it changed while being cleaned up ({Errors})", entry.SiloAddress, Describe(result));
            }
        }
    }

    public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId, CancellationToken.None);

    public async Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken)
    {
        var rows = new ConsulSiloRows(clusterId, _options.KvRootFolder);
        await _consul.DeleteAsync(rows.Prefix, recurse: true, cancellationToken);
    }

    public void Dispose() => _consul.Dispose();

    private async Task<bool> CommitAsync(MembershipEntry entry, TableVersion tableVersion, List<ConsulTxnOp> rowOps, string what, CancellationToken cancellationToken)
    {
        // The version key is check-and-set at the etag the caller read (0: it does not exist yet), so a writer that
        // read an older table loses, and the version only moves forward.
        rowOps.Add(ConsulTxnOp.Kv(ConsulKvVerb.Cas, _rows.VersionKey, ConsulSiloRows.VersionValue(tableVersion), ConsulSiloRows.EtagIndex(tableVersion.VersionEtag)));
        var result = await _consul.TxnAsync(rowOps, cancellationToken);
        if (!result.Committed)
        {
            _logger.LogDebug("Consul refused the {What} of {Silo} at table version {Version}: {Errors}", what, entry.SiloAddress, tableVersion, Describe(result));
        }
        return result.Committed;
    }

    private static string Describe(ConsulTxnResult result) =>
        string.Join("; ", result.Errors.Select(e => $"op {e.OpIndex}: {e.What}"));
}
