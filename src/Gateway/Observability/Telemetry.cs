using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Wharf.Gateway.Observability;

/// <summary>
/// OpenTelemetry for a host: metrics always (scraped on <c>/metrics</c> in Prometheus text format), traces exported
/// over OTLP only when an endpoint is configured with the standard variables (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c> or
/// <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>; <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> = <c>grpc</c> or
/// <c>http/protobuf</c>; <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>). They are read from the host's
/// configuration, so the environment, the command line and appsettings all work.
/// </summary>
public static class Telemetry
{
    /// <summary>Orleans' meter (grain activations, messaging) and its activity sources (grain calls, with activity propagation).</summary>
    public const string OrleansMeter = "Microsoft.Orleans";
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>Orleans' instruments worth a scrape (it has some 40): activations and grain-call latency.</summary>
    private static readonly HashSet<string> OrleansKept =
        ["orleans-catalog-activations", "orleans-catalog-activation-created", "orleans-catalog-activation-destroyed", "orleans-grains", "orleans-app-requests-latency"];

    public static bool TracingEnabled(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
        || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);

    /// <summary>
    /// Adds metrics and (when configured) tracing. <paramref name="meters"/> are the host's own meters besides
    /// <see cref="WharfMetrics.MeterName"/> and Orleans'.
    /// </summary>
    private const string RuntimeMeter = "System.Runtime";

    public static WebApplicationBuilder AddWharfTelemetry(this WebApplicationBuilder builder, string serviceName, string nodeId, params string[] meters)
    {
        var configuration = builder.Configuration;
        builder.Services.AddSingleton<WharfMetrics>();
        builder.Services.AddSingleton<AccessLog>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AccessLog>());
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(
                configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : serviceName,
                serviceVersion: typeof(Telemetry).Assembly.GetName().Version?.ToString(),
                serviceInstanceId: nodeId))
            .WithMetrics(m =>
            {
                // System.Runtime: the runtime's own (GC collections and pause time, heap, thread pool queue, CPU), which is
                // where a latency tail or memory growth is explained first.
                m.AddMeter([WharfMetrics.MeterName, OrleansMeter, RuntimeMeter, .. meters]);
                m.AddView(i => i switch
                {
                    { Unit: "s", Meter.Name: var n } when n.StartsWith(WharfMetrics.MeterName, StringComparison.Ordinal) =>
                        new ExplicitBucketHistogramConfiguration { Boundaries = WharfMetrics.LatencyBuckets },
                    { Meter.Name: OrleansMeter } when !OrleansKept.Contains(i.Name) => MetricStreamConfiguration.Drop,
                    _ => null,
                });
                // A scrape sees the counters as they are now, not as they were up to 300 ms ago (the exporter's default cache).
                m.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
            });
        if (TracingEnabled(configuration))
        {
            otel.WithTracing(t => t
                .AddSource(WharfTracing.SourceName)
                .AddSource(OrleansSources)
                .AddAspNetCoreInstrumentation(o =>
                {
                    o.Filter = c => !IsHousekeeping(c.Request.Path);
                    // The instrumentation names the span after the endpoint's template (/v2/{**path}) when the request
                    // ends; the dispatcher knows the OCI route, so name it after that instead.
                    o.EnrichWithHttpResponse = (span, response) =>
                    {
                        if (response.HttpContext.Features.Get<RequestObservation>() is { } observation)
                        {
                            span.DisplayName = $"{response.HttpContext.Request.Method} {observation.RouteTemplate}";
                            span.SetTag("http.route", observation.RouteTemplate);
                        }
                    };
                })
                // The gRPC call's span is the client span: the HTTP/2 request under it makes none of its own.
                .AddGrpcClientInstrumentation(o => o.SuppressDownstreamInstrumentation = true)
                // The byte service's bulk calls (HTTP/1.1, Contracts.Bytes.BulkBytes) as client spans; no other HttpClient
                // call (membership polling, the exporter's own) makes a span.
                .AddHttpClientInstrumentation(o => o.FilterHttpRequestMessage = r =>
                    r.RequestUri?.AbsolutePath.StartsWith(Wharf.Contracts.Bytes.BulkBytes.Prefix + "/", StringComparison.Ordinal) == true)
                .AddOtlpExporter());
        }
        return builder;
    }

    /// <summary>Puts the request observation (metrics, access log) on the pipeline and maps <c>/metrics</c>.</summary>
    public static WebApplication UseWharfTelemetry(this WebApplication app)
    {
        app.UseMiddleware<RequestObservationMiddleware>();
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }

    private static bool IsHousekeeping(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz");
}
