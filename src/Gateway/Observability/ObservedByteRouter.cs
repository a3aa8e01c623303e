using System.Diagnostics;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Observability;

/// <summary>
/// Puts metrics and a span on every byte-service call a router hands out, whether the node is reached over gRPC or
/// in-process (the all-in-one): the span carries the replica's node id, the digest and the bytes moved, and is the
/// parent of the gRPC client span when there is one.
/// </summary>
public sealed class ObservedByteRouter(IByteRouter inner, WharfMetrics metrics) : IByteRouter, IDisposable
{
    public void Dispose() => (inner as IDisposable)?.Dispose();

    public IReadOnlyList<string> OwnersOfDigest(Digest digest) => inner.OwnersOfDigest(digest);

    public IReadOnlyList<string> OwnersOfUpload(string uploadId) => inner.OwnersOfUpload(uploadId);

    public IReadOnlyList<string> RankingOfDigest(Digest digest) => inner.RankingOfDigest(digest);

    public int WriteQuorum => inner.WriteQuorum;

    public int Replicas => inner.Replicas;

    public Contracts.Placement.NodeState? StateOf(string nodeId) => inner.StateOf(nodeId);

    public IByteService Node(string nodeId) => new ObservedByteService(inner.Node(nodeId), nodeId, metrics);
}

internal sealed class ObservedByteService(IByteService inner, string nodeId, WharfMetrics metrics) : IByteService
{
    private static readonly KeyValuePair<string, object?> ReadDirection = new("direction", "read");
    private static readonly KeyValuePair<string, object?> WriteDirection = new("direction", "write");

    public async Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken)
    {
        var call = Start("Stat", digest, null);
        try
        {
            var size = await inner.StatAsync(digest, cancellationToken);
            call.Finish(size is null ? "not_found" : "ok", null);
            return size;
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    public async Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken)
    {
        var call = Start("Read", digest, null);
        try
        {
            var stream = await inner.OpenReadAsync(digest, offset, length, cancellationToken);
            if (stream is null)
            {
                call.Finish("not_found", null);
                return null;
            }
            call.Finish("ok", length);
            // Bytes are counted as the caller reads them: a client that hangs up mid-layer moved fewer.
            return new CountingReadStream(stream, n => metrics.ByteTransferred.Add(n, ReadDirection));
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    public async Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken)
    {
        var call = Start("WriteBlob", digest, null);
        try
        {
            var size = await inner.WriteBlobAsync(digest, content, expectedLength, cancellationToken);
            metrics.ByteTransferred.Add(size, WriteDirection);
            call.Finish("ok", size);
            return size;
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    public async Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken)
    {
        var call = Start("AppendUpload", null, uploadId);
        try
        {
            var length = await inner.AppendUploadAsync(uploadId, offset, content, cancellationToken);
            metrics.ByteTransferred.Add(length - offset, WriteDirection);
            call.Finish("ok", length - offset);
            return length;
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    public async Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken)
    {
        var call = Start("CommitUpload", digest, uploadId);
        try
        {
            await inner.CommitUploadAsync(uploadId, digest, length, cancellationToken);
            call.Finish("ok", null);
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    public async Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken)
    {
        var call = Start("DeleteUpload", null, uploadId);
        try
        {
            await inner.DeleteUploadAsync(uploadId, cancellationToken);
            call.Finish("ok", null);
        }
        catch (Exception e)
        {
            call.Fail(e);
            throw;
        }
    }

    private ObservedCall Start(string method, Digest? digest, string? uploadId)
    {
        var span = WharfTracing.Source.StartActivity($"wharf.bytes/{method}", ActivityKind.Internal);
        if (span is not null)
        {
            span.SetTag("rpc.system", "grpc");
            span.SetTag("rpc.service", "wharf.bytes.v1.Bytes");
            span.SetTag("rpc.method", method);
            span.SetTag("wharf.replica.node_id", nodeId);
            if (digest is { } d)
            {
                span.SetTag("oci.digest", d.ToString());
            }
            if (uploadId is not null)
            {
                span.SetTag("oci.upload_id", uploadId);
            }
        }
        return new ObservedCall(metrics, method, span, Stopwatch.GetTimestamp());
    }

    private readonly struct ObservedCall(WharfMetrics metrics, string method, Activity? span, long started)
    {
        public void Finish(string outcome, long? bytes)
        {
            Record(outcome);
            if (span is not null)
            {
                if (bytes is { } b)
                {
                    span.SetTag("wharf.bytes", b);
                }
                span.Dispose();
            }
        }

        public void Fail(Exception e)
        {
            Record(e is RegistryException { Code: var c } && c != ErrorCode.Unavailable ? "rejected" : "error");
            if (span is not null)
            {
                span.SetStatus(ActivityStatusCode.Error, e.Message);
                span.SetTag("error.type", e.GetType().FullName);
                span.Dispose();
            }
        }

        private void Record(string outcome)
        {
            var m = new KeyValuePair<string, object?>("method", method);
            metrics.ByteCalls.Add(1, m, new KeyValuePair<string, object?>("outcome", outcome));
            metrics.ByteCallDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, m);
        }
    }
}
