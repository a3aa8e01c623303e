using System.Diagnostics.Metrics;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Observability;

/// <summary>
/// What this node stores, observed when scraped: RocksDB's key count estimate and its files on disk, the blob files
/// beside it, and the uploads with a part file here. Walking <c>blobs/</c> costs one stat per blob, so its result is
/// reused for <c>Wharf:Metrics:DiskScanInterval</c> (default 15 s).
/// </summary>
public sealed class StoreMetrics : IDisposable
{
    public const string MeterName = "Wharf.Store";

    private readonly Meter _meter = new(MeterName);
    private readonly RecordStore _records;
    private readonly string _dataPath;
    private readonly TimeSpan _scanInterval;
    private readonly Lock _lock = new();
    private DateTime _scannedAt = DateTime.MinValue;
    private (long Files, long Bytes) _blobs;

    public StoreMetrics(RecordStore records, WharfOptions options, IConfiguration configuration)
    {
        _records = records;
        _dataPath = Path.GetFullPath(options.DataPath);
        _scanInterval = configuration.GetValue("Wharf:Metrics:DiskScanInterval", TimeSpan.FromSeconds(15));
        _meter.CreateObservableGauge("wharf.store.keys", () => KeyEstimate(), description: "RocksDB's estimate of the keys in this node's store (rocksdb.estimate-num-keys).");
        _meter.CreateObservableGauge("wharf.store.db.size", () => FolderBytes(Path.Combine(_dataPath, "db")), "By", "Bytes of this node's RocksDB folder on disk (SST files, WAL, manifest).");
        _meter.CreateObservableGauge("wharf.store.blob.files", () => Blobs().Files, description: "Blob files beside RocksDB on this node (blobs above the inline threshold).");
        _meter.CreateObservableGauge("wharf.store.blob.size", () => Blobs().Bytes, "By", "Bytes of the blob files beside RocksDB on this node.");
        _meter.CreateObservableGauge("wharf.store.uploads.in_progress", () => CountFiles(Path.Combine(_dataPath, "uploads")), description: "Uploads with a part file on this node (started, not yet committed, cancelled or expired).");
    }

    private long KeyEstimate()
    {
        try
        {
            return long.TryParse(_records.Property("rocksdb.estimate-num-keys"), out var n) ? n : 0;
        }
        catch (ObjectDisposedException)
        {
            return 0;
        }
    }

    private (long Files, long Bytes) Blobs()
    {
        lock (_lock)
        {
            if (DateTime.UtcNow - _scannedAt >= _scanInterval)
            {
                long files = 0, bytes = 0;
                foreach (var f in Enumerate(Path.Combine(_dataPath, "blobs")))
                {
                    files++;
                    bytes += f.Length;
                }
                _blobs = (files, bytes);
                _scannedAt = DateTime.UtcNow;
            }
            return _blobs;
        }
    }

    private static long FolderBytes(string path) => Enumerate(path).Sum(f => f.Length);

    private static long CountFiles(string path) => Enumerate(path).LongCount();

    private static IEnumerable<FileInfo> Enumerate(string path)
    {
        var dir = new DirectoryInfo(path);
        // A file renamed or removed while the walk runs is skipped, not an error.
        return dir.Exists
            ? dir.EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 })
            : [];
    }

    public void Dispose() => _meter.Dispose();
}
