using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Tests.Observability.Otlp;

namespace Wharf.Tests.Observability.Tracing;

/// <summary>One span as the receiver got it, flattened: ids in hex, the service from its resource, attributes as text.</summary>
public sealed record ReceivedSpan(
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    Span.Types.SpanKind Kind,
    string Service,
    string Scope,
    IReadOnlyDictionary<string, string> Attributes)
{
    public override string ToString() => $"{Service} {Kind} '{Name}' {SpanId}<-{ParentSpanId} [{string.Join(", ", Attributes.Select(a => $"{a.Key}={a.Value}"))}]";
}

/// <summary>
/// An OTLP trace receiver: a real gRPC server (Kestrel, HTTP/2 without TLS, 127.0.0.1, a free port) implementing
/// <c>opentelemetry.proto.collector.trace.v1.TraceService/Export</c>, keeping every span it is sent.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OtlpReceiver(WebApplication app, SpanSink sink)
    {
        _app = app;
        Sink = sink;
    }

    private SpanSink Sink { get; }

    /// <summary>The OTLP/gRPC endpoint (HTTP/2).</summary>
    public string Endpoint => _app.Urls.First();

    /// <summary>The OTLP/HTTP endpoint (HTTP/1.1); the exporter appends <c>/v1/traces</c>.</summary>
    public string HttpEndpoint => _app.Urls.Last();

    public IReadOnlyCollection<ReceivedSpan> Spans => Sink.Spans.ToArray();

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // gRPC needs HTTP/2 (cleartext: prior knowledge, so a listener of its own); OTLP/HTTP is HTTP/1.1 POSTs.
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
            k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
        });
        var sink = new SpanSink();
        builder.Services.AddSingleton(sink);
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<TraceServiceEndpoint>();
        // OTLP/HTTP with protobuf bodies (the exporter posts to {endpoint}/v1/traces).
        app.MapPost("/v1/traces", async (HttpContext c, SpanSink s) =>
        {
            using var body = new MemoryStream();
            await c.Request.Body.CopyToAsync(body, c.RequestAborted);
            TraceServiceEndpoint.Keep(s, ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray()));
            return Results.Bytes(new ExportTraceServiceResponse().ToByteArray(), "application/x-protobuf");
        });
        await app.StartAsync();
        return new OtlpReceiver(app, sink);
    }

    /// <summary>Waits until the spans received satisfy <paramref name="done"/> (exporters batch), or the deadline passes.</summary>
    public async Task<IReadOnlyCollection<ReceivedSpan>> WaitForAsync(Func<IReadOnlyCollection<ReceivedSpan>, bool> done, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(Spans) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, ct);
        }
        return Spans;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class SpanSink
    {
        public ConcurrentQueue<ReceivedSpan> Spans { get; } = new();
    }

    private sealed class TraceServiceEndpoint(SpanSink sink) : TraceService.TraceServiceBase
    {
        public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
        {
            Keep(sink, request);
            return Task.FromResult(new ExportTraceServiceResponse());
        }

        public static void Keep(SpanSink sink, ExportTraceServiceRequest request)
        {
            foreach (var resource in request.ResourceSpans)
            {
                var service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value?.StringValue ?? "";
                foreach (var scope in resource.ScopeSpans)
                {
                    foreach (var span in scope.Spans)
                    {
                        sink.Spans.Enqueue(new ReceivedSpan(
                            Convert.ToHexStringLower(span.TraceId.Span),
                            Convert.ToHexStringLower(span.SpanId.Span),
                            Convert.ToHexStringLower(span.ParentSpanId.Span),
                            span.Name,
                            span.Kind,
                            service,
                            scope.Scope?.Name ?? "",
                            span.Attributes.ToDictionary(a => a.Key, a => Text(a.Value))));
                    }
                }
            }
        }

        private static string Text(AnyValue? v) => v?.ValueCase switch
        {
            AnyValue.ValueOneofCase.StringValue => v.StringValue,
            AnyValue.ValueOneofCase.IntValue => v.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            AnyValue.ValueOneofCase.BoolValue => v.BoolValue ? "true" : "false",
            AnyValue.ValueOneofCase.DoubleValue => v.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => "",
        };
    }
}
