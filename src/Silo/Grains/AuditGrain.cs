using System.Globalization;
using System.Security.Cryptography;
using Orleans.Concurrency;
using Wharf.Contracts.Grains;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// One hour of the audit log as a replicated log (<c>h/{yyyyMMddHH}</c>), led from an owner of its shard like a
/// repository: each batch a gateway sends is one record, <c>au/{hour}/{unix ms}-{random}</c>, so the hour's
/// batches read back in the order they were stored and survive a silo's loss exactly like repository records.
/// </summary>
[Reentrant, ShardOwnerPlacement, GrainType(GrainTypes.Audit)]
public sealed class AuditGrain(RecordStore records, ReplicatedLogs logs) : LogGrain(logs), IAuditGrain
{
    /// <summary>The largest batch a gateway may append (it sends smaller ones).</summary>
    public const int MaxBatchBytes = 4 * 1024 * 1024;

    private string Hour => this.GetPrimaryKeyString();

    protected override string LogId => "h/" + Hour;

    private string Prefix => $"au/{Hour}/";

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (!IsHour(Hour))
        {
            throw new ArgumentException($"an audit hour is yyyyMMddHH, not '{Hour}'");
        }
        return base.OnActivateAsync(cancellationToken);
    }

    public static bool IsHour(string hour) =>
        hour.Length == 10 && DateTime.TryParseExact(hour, "yyyyMMddHH", CultureInfo.InvariantCulture, DateTimeStyles.None, out _);

    public async Task Append(byte[] jsonLines)
    {
        if (jsonLines.Length == 0)
        {
            return;
        }
        if (jsonLines.Length > MaxBatchBytes)
        {
            throw new ArgumentException($"an audit batch is at most {MaxBatchBytes} bytes");
        }
        var key = Prefix + DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString("D13", CultureInfo.InvariantCulture)
            + "-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        await AppendAsync(new RecordBatch().Put(key, jsonLines));
    }

    public async Task<AuditBatches> Read(string? after, int maxBatches)
    {
        await ReadableAsync();
        var page = records.Scan(Prefix, after, Math.Clamp(maxBatches, 1, 1000) + 1);
        var taken = page.Take(Math.Clamp(maxBatches, 1, 1000)).ToList();
        return new AuditBatches([.. taken.Select(kv => kv.Key)], [.. taken.Select(kv => kv.Value)], page.Count > taken.Count);
    }

    public async Task Drop()
    {
        await ReadableAsync();
        // Forgetting a log keeps its live records, so they are deleted first (in batches), then the log goes.
        while (records.Scan(Prefix, null, 512) is { Count: > 0 } page)
        {
            var batch = new RecordBatch();
            foreach (var (key, _) in page)
            {
                batch.Delete(Prefix + key);
            }
            await AppendAsync(batch);
        }
        await ForgetAsync();
    }
}
