using System.Buffers;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Silo.Observability;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Maintenance;

/// <summary>The outcome of one full pass over this node's blobs (<c>GET /admin/scrub</c>).</summary>
public sealed record ScrubPass(DateTimeOffset Started, DateTimeOffset Completed, long Checked, long Bytes, long Corrupt, long Repaired, long Unrepaired);

/// <summary>
/// Re-hashes every blob this node stores (files and inline values) against its digest, within a read budget of
/// <see cref="ScrubOptions.BytesPerSecond"/> so client traffic keeps priority (DESIGN principle 6). A copy that does
/// not hash to its digest (bit rot, a truncated or missing file) is replaced by verified bytes fetched from another
/// holder; when no holder has a good copy it is moved to <c>corrupt/</c> and unindexed, so this node stops serving
/// wrong bytes and readers turn to other holders. The first pass starts <see cref="ScrubOptions.StartDelay"/> after
/// start; the next <see cref="ScrubOptions.Interval"/> after each pass ends.
/// </summary>
public sealed class BlobScrubber(BlobStore store, IBlobPeers peers, ScrubMetrics metrics, WharfOptions options, ILogger<BlobScrubber> logger) : BackgroundService
{
    private const int ChunkSize = 256 * 1024;
    private const int PageSize = 256;

    private volatile ScrubPass? _lastPass;

    public ScrubPass? LastPass => _lastPass;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var scrub = options.Scrub;
        if (!scrub.Enabled)
        {
            return;
        }
        await Task.Delay(scrub.StartDelay, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var pass = await ScrubOnceAsync(stoppingToken);
                logger.LogInformation(
                    "scrub pass done: {Checked} blobs, {Bytes} bytes, {Corrupt} corrupt, {Repaired} repaired, {Unrepaired} unrepaired in {Duration}",
                    pass.Checked, pass.Bytes, pass.Corrupt, pass.Repaired, pass.Unrepaired, pass.Completed - pass.Started);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "scrub pass failed");
            }
            await Task.Delay(scrub.Interval, stoppingToken);
        }
    }

    /// <summary>One full pass over the index, in digest order; blobs added during the pass are seen if they sort later.</summary>
    public async Task<ScrubPass> ScrubOnceAsync(CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var pacer = new ReadPacer(options.Scrub.BytesPerSecond);
        long checkedCount = 0, bytes = 0, corrupt = 0, repaired = 0, unrepaired = 0;
        Digest? after = null;
        List<StoredBlob> page;
        do
        {
            page = store.ListBlobs(after, PageSize);
            foreach (var blob in page)
            {
                after = blob.Digest;
                var (verdict, read) = await VerifyAsync(blob, pacer, cancellationToken);
                if (verdict == Verdict.Gone)
                {
                    continue;
                }
                checkedCount++;
                bytes += read;
                metrics.Checked.Add(1);
                metrics.Bytes.Add(read);
                if (verdict == Verdict.Good)
                {
                    continue;
                }
                corrupt++;
                metrics.Corrupt.Add(1);
                logger.LogError("scrub: {Digest} ({Size} bytes, {Where}) does not match its digest on this node", blob.Digest, blob.Size, blob.Inline ? "inline" : "file");
                var source = await RepairAsync(blob, pacer, cancellationToken);
                if (source is not null)
                {
                    repaired++;
                    metrics.Repaired.Add(1);
                    logger.LogWarning("scrub: {Digest} repaired from node {Node}", blob.Digest, source);
                }
                else
                {
                    unrepaired++;
                    metrics.Unrepaired.Add(1);
                    var kept = store.Quarantine(blob.Digest);
                    logger.LogError("scrub: no other node had a good copy of {Digest}: this node no longer serves it; its bytes are kept at {Path}", blob.Digest, kept);
                }
            }
        }
        while (page.Count == PageSize);
        var pass = new ScrubPass(started, DateTimeOffset.UtcNow, checkedCount, bytes, corrupt, repaired, unrepaired);
        _lastPass = pass;
        metrics.PassCompleted(pass.Completed);
        return pass;
    }

    private enum Verdict
    {
        Good,
        Corrupt,
        Gone,
    }

    /// <summary>Hashes the copy as readers get it, in sequential chunks; an unreadable or short copy is corrupt.</summary>
    private async Task<(Verdict, long)> VerifyAsync(StoredBlob blob, ReadPacer pacer, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        long total = 0;
        try
        {
            await using var stream = await store.OpenReadAsync(blob.Digest, 0, blob.Size, ct);
            if (stream is null)
            {
                // Unindexed since the page was read, or an inline value that went missing.
                return (await store.StatAsync(blob.Digest, ct) is null ? Verdict.Gone : Verdict.Corrupt, 0);
            }
            using var hash = ResumableHash.Create(blob.Digest.Algorithm);
            int n;
            while ((n = await stream.ReadAsync(buffer.AsMemory(0, ChunkSize), ct)) > 0)
            {
                hash.Append(buffer.AsSpan(0, n));
                total += n;
                await pacer.SpendAsync(n, ct);
            }
            return (total == blob.Size && hash.FinishDigest() == blob.Digest ? Verdict.Good : Verdict.Corrupt, total);
        }
        catch (IOException e)
        {
            // A missing file, a read error from the disk: the copy cannot be served as it is.
            logger.LogWarning("scrub: reading {Digest} failed: {Error}", blob.Digest, e.Message);
            return (Verdict.Corrupt, total);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Fetches the blob from the first holder whose bytes verify; returns that node, or null.</summary>
    private async Task<string?> RepairAsync(StoredBlob blob, ReadPacer pacer, CancellationToken ct)
    {
        foreach (var (node, bytes) in peers.HoldersOf(blob.Digest))
        {
            try
            {
                await using var source = await bytes.OpenReadAsync(blob.Digest, 0, blob.Size, ct);
                if (source is null)
                {
                    continue;
                }
                await using var paced = new PacedReadStream(source, pacer);
                await store.RepairAsync(blob.Digest, paced, ct);
                return node;
            }
            catch (RegistryException e) when (e.Code == ErrorCode.DigestInvalid)
            {
                logger.LogWarning("scrub: node {Node}'s copy of {Digest} does not match its digest either", node, blob.Digest);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                logger.LogWarning("scrub: fetching {Digest} from node {Node} failed: {Error}", blob.Digest, node, e.Message);
            }
        }
        return null;
    }
}

/// <summary>
/// A bytes-per-second budget: each read waits until the bytes read so far are within budget. Idle time earns at
/// most one second of burst.
/// </summary>
internal sealed class ReadPacer(long bytesPerSecond)
{
    private long _start = System.Diagnostics.Stopwatch.GetTimestamp();
    private long _bytes;

    public async ValueTask SpendAsync(long count, CancellationToken ct)
    {
        _bytes += count;
        var due = TimeSpan.FromSeconds((double)_bytes / bytesPerSecond);
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(_start);
        if (due > elapsed)
        {
            await Task.Delay(due - elapsed, ct);
        }
        else if (elapsed - due > TimeSpan.FromSeconds(1))
        {
            _start = System.Diagnostics.Stopwatch.GetTimestamp();
            _bytes = 0;
        }
    }
}

/// <summary>A read-only stream that spends its reads from a <see cref="ReadPacer"/> (repair traffic is throttled too).</summary>
internal sealed class PacedReadStream(Stream inner, ReadPacer pacer) : ReadOnlyStream
{
    public override int Read(Span<byte> buffer) => inner.Read(buffer);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        await pacer.SpendAsync(n, cancellationToken);
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}
