using Orleans.Concurrency;

namespace Wharf.Contracts.Grains;

/// <summary>
/// One hour of the audit log (key: the hour in UTC, <c>yyyyMMddHH</c>), a replicated log of its own like a
/// repository's: gateways append batches of events as JSON lines, administrators read them back, and the retention
/// janitor drops whole hours.
/// </summary>
[Alias("wharf.IAuditGrain")]
public interface IAuditGrain : IGrainWithStringKey
{
    /// <summary>Stores one batch of events (JSON lines, UTF-8), acknowledged once W owners hold it.</summary>
    [Alias("Append")]
    Task Append(byte[] jsonLines);

    /// <summary>The hour's batches in the order they were stored, after <paramref name="after"/> (a key from a previous page).</summary>
    [Alias("Read"), ReadOnly]
    Task<AuditBatches> Read(string? after, int maxBatches);

    /// <summary>Deletes the hour's events on every owner (retention).</summary>
    [Alias("Drop")]
    Task Drop();
}

[GenerateSerializer, Immutable, Alias("wharf.audit-batches.v1")]
public sealed record AuditBatches(
    [property: Id(0)] string[] Keys,
    [property: Id(1)] byte[][] Batches,
    [property: Id(2)] bool HasMore);
