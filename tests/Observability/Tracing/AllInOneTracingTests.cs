using System.Security.Cryptography;
using Wharf.Tests.Observability.Otlp;

namespace Wharf.Tests.Observability.Tracing;

/// <summary>
/// The all-in-one as a process exporting over OTLP/HTTP (protobuf) to the in-test receiver: a manifest pull is one
/// tree of the HTTP span, the grain call and the in-process byte-service span, all under the service "wharf".
/// </summary>
public sealed class AllInOneTracingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 90_000)]
    public async Task A_pull_from_the_all_in_one_exported_over_otlp_http_is_one_tree()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        var data = Directory.CreateTempSubdirectory("wharf-obs-trace-aio-").FullName;
        var registry = WharfProcess.Start("Wharf.Silo.dll", [$"--Wharf:DataPath={data}"], new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.HttpEndpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        }, data);
        try
        {
            await registry.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), Ct);
            using var http = new HttpClient { BaseAddress = registry.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            var repo = "obs/trace-aio-" + Guid.NewGuid().ToString("N")[..8];
            var (_, _, manifest) = await Push.ImageAsync(http, repo, "v1", 1000, Ct);

            var traceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            var rootSpanId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
            using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/v1");
            request.Headers.TryAddWithoutValidation("traceparent", $"00-{traceId}-{rootSpanId}-01");
            using var get = await http.SendAsync(request, Ct);
            Assert.Equal(manifest, await get.Content.ReadAsByteArrayAsync(Ct));

            bool Complete(IReadOnlyCollection<ReceivedSpan> all) =>
                all.Any(s => s.TraceId == traceId && s.Kind == Span.Types.SpanKind.Server && s.Attributes.ContainsKey("http.route"))
                && all.Any(s => s.TraceId == traceId && s.Name == "wharf.bytes/Read")
                && all.Any(s => s.TraceId == traceId && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("rpc.system.name") == "orleans");
            var spans = (await receiver.WaitForAsync(Complete, TimeSpan.FromSeconds(20), Ct)).Where(s => s.TraceId == traceId).ToList();
            var dump = string.Join("\n", spans);
            Assert.True(Complete(spans), "the pull's spans did not all arrive:\n" + dump);

            var ids = spans.Select(s => s.SpanId).ToHashSet();
            Assert.All(spans, s => Assert.True(s.ParentSpanId == rootSpanId || ids.Contains(s.ParentSpanId), $"orphan span {s}\n{dump}"));
            Assert.All(spans, s => Assert.Equal("wharf", s.Service));
            var server = Assert.Single(spans, s => s.Kind == Span.Types.SpanKind.Server && s.Attributes.ContainsKey("http.route"));
            Assert.Equal("GET /v2/{name}/manifests/{reference}", server.Name);
            Assert.Equal(rootSpanId, server.ParentSpanId);
            Assert.Equal(repo, server.Attributes["oci.repository"]);
            Assert.Equal("v1", server.Attributes["oci.tag"]);
            Assert.Equal("200", server.Attributes["http.response.status_code"]);
            var read = Assert.Single(spans, s => s.Name == "wharf.bytes/Read");
            Assert.Equal(server.SpanId, read.ParentSpanId);
            Assert.Equal(Push.Sha256(manifest), read.Attributes["oci.digest"]);
            Assert.Equal(manifest.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), read.Attributes["wharf.bytes"]);
        }
        finally
        {
            await registry.DisposeAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
