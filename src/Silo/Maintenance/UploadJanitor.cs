using Wharf.Contracts.Grains;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Maintenance;

/// <summary>
/// Abandoned uploads (a client that never sent its PUT) would hold disk forever: sessions untouched for
/// <see cref="UploadOptions.ExpireAfter"/> are ended and their part files removed, as are part files that no
/// session owns any more. Runs a minute after start (once the silo serves) and then every
/// <see cref="UploadOptions.SweepInterval"/>. In a silo an expired session is ended through its grain, so the end goes
/// through the upload's replicated log and is decided on the committed record; a bare store (tests) deletes locally.
/// </summary>
public sealed class UploadJanitor(RecordStore records, WharfOptions options, ILogger<UploadJanitor> logger, IGrainFactory? grains = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var uploads = options.Uploads;
        await Task.Delay(TimeSpan.FromMinutes(1) < uploads.SweepInterval ? TimeSpan.FromMinutes(1) : uploads.SweepInterval, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var removed = await SweepAsync(DateTimeOffset.UtcNow - uploads.ExpireAfter);
                if (removed > 0)
                {
                    logger.LogInformation("removed {Count} abandoned uploads", removed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "upload sweep failed");
            }
            await Task.Delay(uploads.SweepInterval, stoppingToken);
        }
    }

    public int Sweep(DateTimeOffset cutoff) => SweepAsync(cutoff).GetAwaiter().GetResult();

    public async Task<int> SweepAsync(DateTimeOffset cutoff)
    {
        var removed = 0;
        var uploadDir = Path.Combine(Path.GetFullPath(options.DataPath), "uploads");
        string? after = null;
        List<KeyValuePair<string, byte[]>> page;
        do
        {
            page = records.Scan("u/", after, 500);
            foreach (var (id, value) in page)
            {
                after = id;
                var r = RecordJson.Decode<UploadRecord>(value);
                if (r is not null && r.Touched < cutoff)
                {
                    if (grains is not null)
                    {
                        try
                        {
                            if (!await grains.GetGrain<IUploadSessionGrain>(id).Expire(cutoff))
                            {
                                continue;
                            }
                        }
                        catch (Exception e) when (e is LogUnavailableException or OrleansException or TimeoutException)
                        {
                            logger.LogInformation("upload {UploadId} not expired now: {Message}", id, e.Message);
                            continue;
                        }
                    }
                    else
                    {
                        records.Write(new RecordBatch().Delete(Keys.Upload(id)));
                    }
                    File.Delete(Path.Combine(uploadDir, id + ".part"));
                    removed++;
                }
            }
        }
        while (page.Count == 500);
        if (Directory.Exists(uploadDir))
        {
            foreach (var part in Directory.EnumerateFiles(uploadDir, "*.part"))
            {
                var id = Path.GetFileNameWithoutExtension(part);
                if (!records.Exists(Keys.Upload(id)) && File.GetLastWriteTimeUtc(part) < cutoff.UtcDateTime)
                {
                    File.Delete(part);
                    removed++;
                }
            }
        }
        return removed;
    }
}
