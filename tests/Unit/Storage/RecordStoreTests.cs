using Wharf.Silo.Storage;

namespace Wharf.Tests.Unit.Storage;

public sealed class RecordStoreTests
{
    [Fact(Timeout = 60_000)]
    public async Task Calls_after_dispose_are_refused_and_calls_in_flight_finish_before_rocksdb_closes()
    {
        var path = Path.Combine(Path.GetTempPath(), "wharf-store-" + Guid.NewGuid().ToString("N"));
        try
        {
            var store = RecordStore.Open(path);
            store.Write(new RecordBatch().Put("k/1", [1, 2, 3]));
            // Readers hammering the store while it is disposed: each call either completes or is refused, and the
            // process never reads freed native memory (it used to crash with SIGSEGV). Each reader reads until it is
            // refused (bounded), and the store is disposed only once all of them are reading.
            var ct = TestContext.Current.CancellationToken;
            var started = 0;
            var allReading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // Threads of their own: four spinning readers must not take the thread pool from tests running alongside.
            var readers = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
            {
                var deadline = DateTime.UtcNow.AddSeconds(20);
                var first = true;
                while (DateTime.UtcNow < deadline)
                {
                    try
                    {
                        Assert.Equal([1, 2, 3], store.Get("k/1"));
                        store.Scan("k/", null, 10);
                    }
                    catch (ObjectDisposedException)
                    {
                        return true;
                    }
                    if (first)
                    {
                        first = false;
                        if (Interlocked.Increment(ref started) == 4)
                        {
                            allReading.TrySetResult();
                        }
                    }
                }
                return false;
            }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
            await allReading.Task.WaitAsync(TimeSpan.FromSeconds(20), ct);
            store.Dispose();
            var refused = await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(25), ct);
            Assert.All(refused, Assert.True);
            Assert.Throws<ObjectDisposedException>(() => store.Write(new RecordBatch().Put("k/2", [4])));
            store.Dispose();
        }
        finally
        {
            Directory.Delete(path, recursive: true);
        }
    }
}
