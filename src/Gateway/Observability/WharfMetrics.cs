using System.Diagnostics;
using System.Diagnostics.Metrics;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;

namespace Wharf.Gateway.Observability;

/// <summary>
/// The gateway's instruments (System.Diagnostics.Metrics, exported on <c>/metrics</c> in Prometheus text format and
/// over OTLP). Names follow OpenTelemetry's; the Prometheus exporter turns <c>wharf.http.requests</c> into
/// <c>wharf_http_requests_total</c> and a unit of <c>By</c> or <c>s</c> into a <c>_bytes</c> or <c>_seconds</c> suffix.
/// Labels are a small fixed set (route kind, method, status class of the byte service): never a repository or digest.
/// </summary>
public sealed class WharfMetrics : IDisposable
{
    public const string MeterName = "Wharf";

    /// <summary>Bucket bounds of the latency histograms, in seconds: a manifest GET is sub-millisecond, a layer seconds.</summary>
    public static readonly double[] LatencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private readonly Meter _meter;

    public WharfMetrics(TopologyFeed topology)
    {
        _meter = new Meter(MeterName);
        Requests = _meter.CreateCounter<long>("wharf.http.requests", description: "Registry API requests, by route, method and status code.");
        RequestDuration = _meter.CreateHistogram<double>("wharf.http.request.duration", "s", "Registry API request duration, by route, method and status code.");
        Received = _meter.CreateCounter<long>("wharf.http.received", "By", "Request body bytes read from clients, by route.");
        Sent = _meter.CreateCounter<long>("wharf.http.sent", "By", "Response body bytes sent to clients, by route.");
        UploadRequestsInFlight = _meter.CreateUpDownCounter<long>("wharf.upload.requests.in_flight", description: "Upload requests (POST, PATCH, PUT of /blobs/uploads/) being served by this gateway.");
        ByteCalls = _meter.CreateCounter<long>("wharf.bytes.client.calls", description: "Byte-service calls from this process, by method and outcome (ok, not_found, error).");
        ByteCallDuration = _meter.CreateHistogram<double>("wharf.bytes.client.duration", "s", "Byte-service call duration until the call returns (reads: until the stream opens).");
        ByteTransferred = _meter.CreateCounter<long>("wharf.bytes.client.transferred", "By", "Bytes moved through byte-service calls, by direction (read, write).");
        ManifestCacheLookups = _meter.CreateCounter<long>("wharf.manifest.cache.lookups", description: "Manifest GET/HEAD lookups in this gateway's caches, by cache (resolution: a tag or digest under a lease; body: manifest bytes by digest) and result (hit, miss).");
        BlobCacheLookups = _meter.CreateCounter<long>("wharf.blob.cache.lookups", description: "Whole-blob GETs looked up in this gateway's blob cache, by result (hit; miss: fetched whole and kept; bypass: streamed, as too many bytes were being fetched or the cache is full of blobs asked for as often).");
        TagLeaseRevocations = _meter.CreateCounter<long>("wharf.tag_lease.revocations.received", description: "Lease revocations this gateway received from repository grains (a tag moved or deleted, a manifest deleted).");
        GrainCallRetries = _meter.CreateCounter<long>("wharf.grain.read_retries", description: "Read-only grain calls asked again after Orleans rejected them while their grain moved (a silo shutting down), by outcome (ok, failed).");
        RateLimited = _meter.CreateCounter<long>("wharf.http.rate_limited", description: "Requests answered 429 by this gateway's rate limits, by class (ManifestReads, BlobReads, Listings, Writes, Tokens, FailedLogins).");
        AuditStored = _meter.CreateCounter<long>("wharf.audit.events.stored", description: "Audit events this gateway stored in the cluster.");
        AuditDropped = _meter.CreateCounter<long>("wharf.audit.events.dropped", description: "Audit events this gateway could not record, by reason (queue_full, store_failed).");
        _meter.CreateObservableGauge("wharf.placement.view.epoch", () => topology.Current.Epoch, description: "Epoch of the placement view this process follows.");
        _meter.CreateObservableGauge("wharf.placement.view.nodes", () => NodesByState(topology.Current), description: "Nodes in the placement view, by state.");
    }

    public Counter<long> Requests { get; }
    public Histogram<double> RequestDuration { get; }
    public Counter<long> Received { get; }
    public Counter<long> Sent { get; }
    public UpDownCounter<long> UploadRequestsInFlight { get; }
    public Counter<long> ByteCalls { get; }
    public Histogram<double> ByteCallDuration { get; }
    public Counter<long> ByteTransferred { get; }
    public Counter<long> ManifestCacheLookups { get; }
    public Counter<long> BlobCacheLookups { get; }
    public Counter<long> TagLeaseRevocations { get; }
    public Counter<long> GrainCallRetries { get; }
    public Counter<long> RateLimited { get; }
    public Counter<long> AuditStored { get; }
    public Counter<long> AuditDropped { get; }

    /// <summary>Reports the bytes held by the manifest body cache (one cache per process).</summary>
    public void ObserveManifestCacheSize(Func<long> bytes) =>
        _meter.CreateObservableGauge("wharf.manifest.cache.size", bytes, "By", "Bytes of manifest bodies this gateway keeps by digest.");

    /// <summary>Reports the bytes held by the blob cache (one cache per process).</summary>
    public void ObserveBlobCacheSize(Func<long> bytes) =>
        _meter.CreateObservableGauge("wharf.blob.cache.size", bytes, "By", "Bytes of blobs this gateway keeps by digest.");

    private static IEnumerable<Measurement<int>> NodesByState(PlacementView view)
    {
        foreach (var state in Enum.GetValues<NodeState>())
        {
            var count = 0;
            foreach (var n in view.Nodes)
            {
                if (n.State == state)
                {
                    count++;
                }
            }
            yield return new Measurement<int>(count, new KeyValuePair<string, object?>("state", StateLabel(state)));
        }
    }

    private static string StateLabel(NodeState state) => state switch
    {
        NodeState.Active => "active",
        NodeState.Down => "down",
        NodeState.Draining => "draining",
        NodeState.Removed => "removed",
        NodeState.Joining => "joining",
        _ => "unknown",
    };

    public void Dispose() => _meter.Dispose();
}

/// <summary>The spans Wharf makes itself (the byte-service calls); HTTP, gRPC and Orleans spans come from their instrumentation.</summary>
public static class WharfTracing
{
    public const string SourceName = "Wharf";

    public static readonly ActivitySource Source = new(SourceName);
}
