using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Silo;
using Wharf.Silo.Maintenance;
using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Storage;

public sealed class UploadJanitorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wharf-janitor-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Abandoned_uploads_and_orphan_parts_are_removed_and_live_ones_kept()
    {
        using var records = RecordStore.Open(Path.Combine(_dir, "db"));
        var uploads = Path.Combine(_dir, "uploads");
        Directory.CreateDirectory(uploads);
        var now = DateTimeOffset.UtcNow;
        void Session(string id, DateTimeOffset touched)
        {
            records.Write(new RecordBatch().Put(Keys.Upload(id), RecordJson.Encode(new UploadRecord(1, "r", "sha256", 1, [], touched, touched))));
            File.WriteAllBytes(Path.Combine(uploads, id + ".part"), [1]);
        }
        Session("old", now.AddDays(-3));
        Session("fresh", now);
        var orphan = Path.Combine(uploads, "orphan.part");
        File.WriteAllBytes(orphan, [1]);
        File.SetLastWriteTimeUtc(orphan, now.AddDays(-3).UtcDateTime);

        var janitor = new UploadJanitor(records, new WharfOptions { DataPath = _dir }, NullLogger<UploadJanitor>.Instance);
        Assert.Equal(2, janitor.Sweep(now.AddDays(-1)));

        Assert.False(records.Exists(Keys.Upload("old")));
        Assert.False(File.Exists(Path.Combine(uploads, "old.part")));
        Assert.False(File.Exists(orphan));
        Assert.True(records.Exists(Keys.Upload("fresh")));
        Assert.True(File.Exists(Path.Combine(uploads, "fresh.part")));
    }
}
