using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Wharf.Tests.Membership;
using Wharf.Tests.Observability.Otlp;

namespace Wharf.Tests.Observability.Tracing;

/// <summary>
/// A silo and a gateway as separate processes over a real redis-server, both exporting traces over OTLP/gRPC to an
/// in-test receiver. A push whose requests carry one W3C <c>traceparent</c> (as a traced client sends) must arrive as
/// one tree: the gateway's HTTP spans, the Orleans grain calls into the silo, and each byte-service call as the
/// gateway's span, its gRPC client span and the silo's gRPC server span.
/// </summary>
public sealed class TracingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 120_000)]
    public async Task A_push_through_a_gateway_is_one_trace_across_gateway_grains_and_the_silo_byte_service()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var redis = await RedisServer.StartAsync();
        var data = Directory.CreateTempSubdirectory("wharf-obs-trace-").FullName;
        var membership = new[] { "--Wharf:Membership:Provider=Redis", $"--Wharf:Membership:Address={redis.Address}", "--Wharf:ClusterId=obs-trace" };
        var otel = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        };
        WharfProcess? silo = null, gateway = null;
        try
        {
            silo = WharfProcess.Start("Wharf.Silo.dll", [.. membership, "--Wharf:Role=Silo", $"--Wharf:DataPath={data}", "--Wharf:Cluster:BootstrapExpect=1", "--Wharf:Replication:Factor=1"], otel, data);
            await silo.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), Ct);
            gateway = WharfProcess.Start("Wharf.Gateway.dll", membership, otel, data);
            await gateway.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), Ct);
            using var admin = new HttpClient { BaseAddress = silo.BaseAddress };
            var siloNode = (string)(await admin.GetFromJsonAsync<JsonNode>("admin/cluster", Ct))!["node"]!;

            var traceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            var rootSpanId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
            using var http = new HttpClient { BaseAddress = gateway.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.TryAddWithoutValidation("traceparent", $"00-{traceId}-{rootSpanId}-01");
            var repo = "obs/trace-" + Guid.NewGuid().ToString("N")[..8];
            var (_, layer, _) = await Push.ImageAsync(http, repo, "v1", 100_000, Ct);
            var layerDigest = Push.Sha256(layer);

            bool Complete(IReadOnlyCollection<ReceivedSpan> all)
            {
                var ours = all.Where(s => s.TraceId == traceId).ToList();
                return ours.Count(s => s.Service == "wharf-gateway" && s.Kind == Span.Types.SpanKind.Server) >= 5
                    && new[] { "WriteBlob", "AppendUpload", "CommitUpload" }.All(m => ours.Any(s => s.Service == "wharf-silo" && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("rpc.method") == m))
                    && ours.Any(s => s.Service == "wharf-silo" && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("rpc.method", "").EndsWith("IRepositoryGrain/PutManifest", StringComparison.Ordinal))
                    && ours.Any(s => s.Service == "wharf-gateway" && s.Name == "wharf.bytes/WriteBlob");
            }
            var spans = (await receiver.WaitForAsync(Complete, TimeSpan.FromSeconds(20), Ct)).Where(s => s.TraceId == traceId).ToList();
            var dump = string.Join("\n", spans);
            Assert.True(Complete(spans), "the push's spans did not all arrive:\n" + dump);

            // One tree: every span's parent is the client's span or another span of the trace.
            var ids = spans.Select(s => s.SpanId).ToHashSet();
            Assert.All(spans, s => Assert.True(s.ParentSpanId == rootSpanId || ids.Contains(s.ParentSpanId), $"orphan span {s}\n{dump}"));
            Assert.Equal(["wharf-gateway", "wharf-silo"], spans.Select(s => s.Service).Distinct().Order());
            var byId = spans.ToDictionary(s => s.SpanId);
            bool Descends(ReceivedSpan s, ReceivedSpan ancestor)
            {
                for (var p = s; byId.TryGetValue(p.ParentSpanId, out var parent); p = parent)
                {
                    if (parent.SpanId == ancestor.SpanId)
                    {
                        return true;
                    }
                }
                return false;
            }

            // The manifest PUT: OpenTelemetry's HTTP server attributes plus ours, and a grain call on the silo below it.
            var put = Assert.Single(spans, s => s.Service == "wharf-gateway" && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("http.request.method") == "PUT" && s.Attributes.GetValueOrDefault("http.route") == "/v2/{name}/manifests/{reference}");
            Assert.Equal("PUT /v2/{name}/manifests/{reference}", put.Name);
            Assert.Equal(rootSpanId, put.ParentSpanId);
            Assert.Equal(repo, put.Attributes["oci.repository"]);
            Assert.Equal("201", put.Attributes["http.response.status_code"]);
            var grain = Assert.Single(spans, s => s.Service == "wharf-silo" && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("rpc.method", "").EndsWith("IRepositoryGrain/PutManifest", StringComparison.Ordinal));
            Assert.True(Descends(grain, put), $"the grain call is not below the manifest PUT\n{dump}");
            Assert.Equal("orleans", grain.Attributes["rpc.system.name"]);

            // The monolithic layer push: gateway span with the replica and the bytes, its client span on the silo's bulk
            // port (HTTP/1.1), the silo's server span named after the byte service's method.
            var write = Assert.Single(spans, s => s.Name == "wharf.bytes/WriteBlob" && s.Attributes.GetValueOrDefault("oci.digest") == layerDigest);
            Assert.Equal("wharf-gateway", write.Service);
            Assert.Equal(siloNode, write.Attributes["wharf.replica.node_id"]);
            Assert.Equal(layer.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), write.Attributes["wharf.bytes"]);
            var bulkClient = Assert.Single(spans, s => s.ParentSpanId == write.SpanId && s.Kind == Span.Types.SpanKind.Client);
            Assert.Equal("wharf-gateway", bulkClient.Service);
            Assert.Equal("PUT", bulkClient.Attributes["http.request.method"]);
            var bulkServer = Assert.Single(spans, s => s.Service == "wharf-silo" && s.Kind == Span.Types.SpanKind.Server && Descends(s, bulkClient));
            Assert.Equal("PUT /bytes/v1/blobs/{digest}", bulkServer.Name);
            Assert.Equal("http", bulkServer.Attributes["rpc.system"]);
            Assert.Equal("wharf.bytes.v1.Bytes", bulkServer.Attributes["rpc.service"]);
            Assert.Equal("WriteBlob", bulkServer.Attributes["rpc.method"]);
            Assert.Equal(siloNode, bulkServer.Attributes["wharf.replica.node_id"]);
            // The small calls stay on gRPC.
            var commit = Assert.Single(spans, s => s.Service == "wharf-silo" && s.Kind == Span.Types.SpanKind.Server && s.Attributes.GetValueOrDefault("rpc.method") == "CommitUpload");
            Assert.Equal("grpc", commit.Attributes["rpc.system"]);
            var monolithic = byId[write.ParentSpanId];
            Assert.Equal(repo, monolithic.Attributes["oci.repository"]);
            Assert.Equal("POST", monolithic.Attributes["http.request.method"]);

            // Both processes serve /metrics: the gateway counts the push's requests and byte calls, the silo the calls it served.
            using var gatewayMetrics = await http.GetAsync("metrics", Ct);
            var g = new PrometheusText(await gatewayMetrics.Content.ReadAsStringAsync(Ct));
            Assert.Equal(1, g.Sum("wharf_http_requests_total", "route=manifest", "method=PUT", "code=201"));
            Assert.Equal(2, g.Sum("wharf_bytes_client_calls_total", "method=WriteBlob", "outcome=ok"));
            Assert.True(g.Sum("wharf_placement_view_nodes", "state=active") >= 1);
            var s = new PrometheusText(await admin.GetStringAsync("metrics", Ct));
            Assert.Equal(2, s.Sum("wharf_bytes_server_calls_total", "method=WriteBlob", "code=OK"));
            Assert.Equal(1, s.Sum("wharf_bytes_server_calls_total", "method=AppendUpload", "code=OK"));
            Assert.True(s.Sum("wharf_store_blob_size_bytes") >= layer.Length);
            Assert.True(s.Sum("orleans_catalog_activations", "grain_type=wharf.repository") >= 1);
        }
        finally
        {
            if (gateway is not null)
            {
                await gateway.DisposeAsync();
            }
            if (silo is not null)
            {
                await silo.DisposeAsync();
            }
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
