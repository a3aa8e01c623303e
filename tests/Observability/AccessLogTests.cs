using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Observability;

/// <summary>The access log, turned on with <c>Wharf:AccessLog:Enabled</c>, as a log provider sees its entries.</summary>
public sealed class AccessLogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task Each_request_is_logged_with_method_route_status_bytes_and_trace_id_but_no_query_or_credentials()
    {
        var data = Path.Combine(Path.GetTempPath(), "wharf-obs-log-" + Guid.NewGuid().ToString("N"));
        var captured = new CapturingProvider();
        var app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={data}", "--Wharf:AccessLog:Enabled=true"],
            b =>
            {
                b.Logging.SetMinimumLevel(LogLevel.Warning);
                b.Logging.AddFilter("Wharf.AccessLog", LogLevel.Information);
                b.Logging.AddProvider(captured);
            })!;
        await app.StartAsync(Ct);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single().TrimEnd('/') + "/") };
            var repo = "obs/log-" + Guid.NewGuid().ToString("N")[..8];
            var (_, layer, manifest) = await Push.ImageAsync(http, repo, "v1", 5000, Ct);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/v1?token=query-secret");
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer header-secret");
            request.Headers.TryAddWithoutValidation("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
            using var get = await http.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!captured.Entries.Any(e => (string?)e["Method"] == "GET") && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, Ct);
            }
            var entries = captured.Entries.ToArray();
            var pull = Assert.Single(entries, e => (string?)e["Method"] == "GET");
            Assert.Equal($"/v2/{repo}/manifests/v1", pull["Path"]);
            Assert.Equal("manifest", pull["Route"]);
            Assert.Equal(200, pull["Status"]);
            Assert.Equal((long)manifest.Length, pull["BytesOut"]);
            Assert.Equal("0af7651916cd43dd8448eb211c80319c", pull["TraceId"]);
            var monolithic = Assert.Single(entries, e => (string?)e["Method"] == "POST" && (int?)e["Status"] == 201);
            Assert.Equal((long)layer.Length, monolithic["BytesIn"]);
            Assert.Equal("upload", monolithic["Route"]);
            Assert.All(captured.Messages, m =>
            {
                Assert.DoesNotContain("secret", m, StringComparison.Ordinal);
                Assert.DoesNotContain("token=", m, StringComparison.Ordinal);
            });
        }
        finally
        {
            await app.StopAsync(Ct);
            await app.DisposeAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private sealed class CapturingProvider : ILoggerProvider
    {
        public ConcurrentQueue<IReadOnlyDictionary<string, object?>> Entries { get; } = new();
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose() { }

        private sealed class Logger(CapturingProvider provider, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                provider.Messages.Enqueue(formatter(state, exception));
                if (category == "Wharf.AccessLog" && state is IReadOnlyList<KeyValuePair<string, object?>> fields)
                {
                    provider.Entries.Enqueue(fields.ToDictionary(f => f.Key, f => f.Value));
                }
            }
        }
    }
}
