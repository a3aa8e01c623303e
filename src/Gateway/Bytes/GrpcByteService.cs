using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Protos;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// <see cref="IByteService"/> on one silo's gRPC byte service. Streams both ways in chunks, so a 2 GiB layer never
/// sits in the gateway's memory; failures come back as the registry errors the silo raised, and an unreachable
/// silo as 503 UNAVAILABLE.
/// </summary>
public sealed class GrpcByteService(GrpcChannel channel) : IByteService
{
    public const int ChunkSize = 256 * 1024;

    private readonly Contracts.Protos.Bytes.BytesClient _client = new(channel);

    public async Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            var reply = await _client.StatAsync(new BlobRef { Digest = digest.ToString() }, cancellationToken: cancellationToken);
            return reply.Found ? reply.Size : null;
        }
        catch (RpcException e)
        {
            throw ByteServiceErrors.FromRpc(e);
        }
    }

    public async Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken)
    {
        var call = _client.Read(new ReadRequest { Digest = digest.ToString(), Offset = offset, Length = length }, cancellationToken: cancellationToken);
        try
        {
            // The first chunk tells absent from present before the caller commits to a response.
            var any = await call.ResponseStream.MoveNext(cancellationToken);
            return new GrpcReadStream(call, any ? call.ResponseStream.Current.Data.Memory : ReadOnlyMemory<byte>.Empty, !any);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            call.Dispose();
            return null;
        }
        catch (RpcException e)
        {
            call.Dispose();
            throw ByteServiceErrors.FromRpc(e);
        }
    }

    public async Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken)
    {
        var header = new WriteHeader { Digest = digest.ToString(), HasExpectedLength = expectedLength is not null, ExpectedLength = expectedLength ?? 0 };
        using var call = _client.WriteBlob(cancellationToken: cancellationToken);
        return await SendAsync(call, header, content, cancellationToken);
    }

    public async Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken)
    {
        using var call = _client.AppendUpload(cancellationToken: cancellationToken);
        return await SendAsync(call, new WriteHeader { UploadId = uploadId, Offset = offset }, content, cancellationToken);
    }

    public async Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken)
    {
        try
        {
            await _client.CommitUploadAsync(new CommitRequest { UploadId = uploadId, Digest = digest.ToString(), Length = length }, cancellationToken: cancellationToken);
        }
        catch (RpcException e)
        {
            throw ByteServiceErrors.FromRpc(e);
        }
    }

    public async Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken)
    {
        try
        {
            await _client.DeleteUploadAsync(new UploadRef { UploadId = uploadId }, cancellationToken: cancellationToken);
        }
        catch (RpcException e)
        {
            throw ByteServiceErrors.FromRpc(e);
        }
    }

    private static async Task<long> SendAsync(AsyncClientStreamingCall<WriteRequest, WriteReply> call, WriteHeader header, Stream content, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            await call.RequestStream.WriteAsync(new WriteRequest { Header = header }, ct);
            int n;
            while ((n = await content.ReadAsync(buffer.AsMemory(0, ChunkSize), ct)) > 0)
            {
                await call.RequestStream.WriteAsync(new WriteRequest { Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, n)) }, ct);
            }
            await call.RequestStream.CompleteAsync();
            return (await call.ResponseAsync).Length;
        }
        catch (RpcException e)
        {
            throw ByteServiceErrors.FromRpc(e);
        }
        catch (InvalidOperationException) when (call.GetStatus().StatusCode != StatusCode.OK)
        {
            // The server ended the call early (a bad digest, a full disk): report its error, not the broken write.
            throw ByteServiceErrors.FromRpc(new RpcException(call.GetStatus(), call.GetTrailers()));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A server stream of chunks as a read-only byte stream; disposing it ends the call.</summary>
    private sealed class GrpcReadStream(AsyncServerStreamingCall<Chunk> call, ReadOnlyMemory<byte> first, bool done) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _current = first;
        private bool _done = done;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_current.IsEmpty)
            {
                if (_done)
                {
                    return 0;
                }
                try
                {
                    if (!await call.ResponseStream.MoveNext(cancellationToken))
                    {
                        _done = true;
                        return 0;
                    }
                }
                catch (RpcException e)
                {
                    throw new IOException("blob stream broke: " + e.Status.Detail, ByteServiceErrors.FromRpc(e));
                }
                _current = call.ResponseStream.Current.Data.Memory;
            }
            var n = Math.Min(buffer.Length, _current.Length);
            _current[..n].CopyTo(buffer);
            _current = _current[n..];
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                call.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
