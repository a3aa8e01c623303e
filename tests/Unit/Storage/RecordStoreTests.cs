using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Storage;

public sealed class RecordStoreTests
{
    [Fact(Timeout = 30_000)]
    public async Task Calls_after_dispose_are_refused_and_calls_in_flight_finish_before_rocksdb_closes()
    {
        var path = Path.Combine(Path.GetTempPath(), "wharf-store-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = RecordStore.Open(path);
            store.Write(new RecordBatch().Put("k/1", [1, 2, 3]));
            // Readers hammering the store while it is disposed: each call either completes or is refused, and the
            // process never reads freed native memory (it used to crash with SIGSEGV).
            using var stop = new CancellationTokenSource();
            var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
            {
                var refused = 0;
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        Assert.Equal([1, 2, 3], store.Get("k/1"));
                        store.Scan("k/", null, 10);
                    }
                    catch (ObjectDisposedException)
                    {
                        refused++;
                    }
                }
                return refused;
            })).ToArray();
            await Task.Delay(100, TestContext.Current.CancellationToken);
            store.Dispose();
            await Task.Delay(100, TestContext.Current.CancellationToken);
            stop.Cancel();
            var refusals = await Task.WhenAll(readers);
            Assert.All(refusals, r => Assert.True(r > 0));
            Assert.Throws<ObjectDisposedException>(() => store.Write(new RecordBatch().Put("k/2", [4])));
            store.Dispose();
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }
}
