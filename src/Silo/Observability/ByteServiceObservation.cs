using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Wharf.Silo.Observability;

/// <summary>
/// The silo side of byte-service calls: counts them by method and gRPC status, and puts OpenTelemetry's RPC
/// attributes and this node's id on the server span (ASP.NET Core's, continued from the caller's traceparent).
/// </summary>
public sealed class ByteServiceObservation : Interceptor, IDisposable
{
    public const string MeterName = "Wharf.ByteService";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;
    private readonly string _nodeId;

    public ByteServiceObservation(NodeIdentity node)
    {
        _nodeId = node.Id;
        _calls = _meter.CreateCounter<long>("wharf.bytes.server.calls", description: "Byte-service calls served by this node, by method and gRPC status code.");
        _duration = _meter.CreateHistogram<double>("wharf.bytes.server.duration", "s", "Byte-service calls served by this node: duration, by method.");
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        ObserveAsync(context, async () =>
        {
            await continuation(request, responseStream, context);
            return 0;
        });

    private async Task<T> ObserveAsync<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var method = MethodName(context.Method);
        if (Activity.Current is { IsAllDataRequested: true } span)
        {
            span.DisplayName = "wharf.bytes.v1.Bytes/" + method;
            span.SetTag("rpc.system", "grpc");
            span.SetTag("rpc.service", "wharf.bytes.v1.Bytes");
            span.SetTag("rpc.method", method);
            span.SetTag("wharf.replica.node_id", _nodeId);
        }
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        try
        {
            return await call();
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        catch (OperationCanceledException)
        {
            code = StatusCode.Cancelled;
            throw;
        }
        catch
        {
            code = StatusCode.Unknown;
            throw;
        }
        finally
        {
            var m = new KeyValuePair<string, object?>("method", method);
            _calls.Add(1, m, new KeyValuePair<string, object?>("code", code.ToString()));
            _duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, m);
            Activity.Current?.SetTag("rpc.grpc.status_code", (int)code);
        }
    }

    /// <summary>
    /// Observes a bulk call on HTTP/1.1 (<see cref="Replication.BulkByteEndpoints"/>) like a gRPC call of the same
    /// method: the same RPC attributes and metrics, its code told from the response status when it is disposed.
    /// </summary>
    public IDisposable Begin(HttpContext context, string method)
    {
        if (Activity.Current is { IsAllDataRequested: true } span)
        {
            span.DisplayName = "wharf.bytes.v1.Bytes/" + method;
            span.SetTag("rpc.system", "http");
            span.SetTag("rpc.service", "wharf.bytes.v1.Bytes");
            span.SetTag("rpc.method", method);
            span.SetTag("wharf.replica.node_id", _nodeId);
        }
        return new HttpCall(this, context, method, Stopwatch.GetTimestamp());
    }

    private sealed class HttpCall(ByteServiceObservation owner, HttpContext context, string method, long started) : IDisposable
    {
        public void Dispose()
        {
            var code = context.RequestAborted.IsCancellationRequested ? StatusCode.Cancelled : context.Response.StatusCode switch
            {
                < 300 => StatusCode.OK,
                404 => StatusCode.NotFound,
                503 => StatusCode.Unavailable,
                < 500 => StatusCode.FailedPrecondition,
                _ => StatusCode.Unknown,
            };
            var m = new KeyValuePair<string, object?>("method", method);
            owner._calls.Add(1, m, new KeyValuePair<string, object?>("code", code.ToString()));
            owner._duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, m);
        }
    }

    private static string MethodName(string fullMethod)
    {
        var slash = fullMethod.LastIndexOf('/');
        return slash >= 0 ? fullMethod[(slash + 1)..] : fullMethod;
    }

    public void Dispose() => _meter.Dispose();
}
