using System.Buffers;
using Google.Protobuf;
using Grpc.Core;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Contracts.Protos;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Replication;

/// <summary>
/// The silo's byte service on gRPC: the same <see cref="IByteService"/> the all-in-one calls in-process,
/// put on the wire for gateways in other processes. Data moves in chunks of at most <see cref="ChunkSize"/>.
/// </summary>
public sealed class ByteServiceEndpoint(BlobStore store) : Bytes.BytesBase
{
    public const int ChunkSize = 256 * 1024;

    public override async Task<StatReply> Stat(BlobRef request, ServerCallContext context)
    {
        var size = await store.StatAsync(ParseDigest(request.Digest), context.CancellationToken);
        return new StatReply { Found = size is not null, Size = size ?? 0 };
    }

    public override async Task Read(ReadRequest request, IServerStreamWriter<Chunk> responseStream, ServerCallContext context)
    {
        var digest = ParseDigest(request.Digest);
        await using var stream = await store.OpenReadAsync(digest, request.Offset, request.Length, context.CancellationToken)
            ?? throw ByteServiceErrors.ToRpc(new RegistryException(ErrorCode.BlobUnknown, $"{digest} is not on this node"));
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer.AsMemory(0, ChunkSize), context.CancellationToken)) > 0)
            {
                // WriteAsync completes once the message is serialized, so the buffer may be reused after it.
                await responseStream.WriteAsync(new Chunk { Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, n)) });
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override async Task<WriteReply> WriteBlob(IAsyncStreamReader<WriteRequest> requestStream, ServerCallContext context)
    {
        var header = await ReadHeaderAsync(requestStream, context);
        try
        {
            var size = await store.WriteBlobAsync(
                ParseDigest(header.Digest),
                new GrpcChunkReadStream(requestStream, context.CancellationToken),
                header.HasExpectedLength ? header.ExpectedLength : null,
                context.CancellationToken);
            return new WriteReply { Length = size };
        }
        catch (RegistryException e)
        {
            throw ByteServiceErrors.ToRpc(e);
        }
    }

    public override async Task<WriteReply> AppendUpload(IAsyncStreamReader<WriteRequest> requestStream, ServerCallContext context)
    {
        var header = await ReadHeaderAsync(requestStream, context);
        try
        {
            var length = await store.AppendUploadAsync(
                header.UploadId, header.Offset, new GrpcChunkReadStream(requestStream, context.CancellationToken), context.CancellationToken);
            return new WriteReply { Length = length };
        }
        catch (RegistryException e)
        {
            throw ByteServiceErrors.ToRpc(e);
        }
    }

    public override async Task<Ack> CommitUpload(CommitRequest request, ServerCallContext context)
    {
        try
        {
            await store.CommitUploadAsync(request.UploadId, ParseDigest(request.Digest), request.Length, context.CancellationToken);
            return new Ack();
        }
        catch (RegistryException e)
        {
            throw ByteServiceErrors.ToRpc(e);
        }
    }

    public override async Task<Ack> DeleteUpload(UploadRef request, ServerCallContext context)
    {
        await store.DeleteUploadAsync(request.UploadId, context.CancellationToken);
        return new Ack();
    }

    private static async Task<WriteHeader> ReadHeaderAsync(IAsyncStreamReader<WriteRequest> requestStream, ServerCallContext context)
    {
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.PartCase != WriteRequest.PartOneofCase.Header)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "a write starts with its header"));
        }
        return requestStream.Current.Header;
    }

    private static Digest ParseDigest(string text) =>
        Digest.TryParse(text, out var d)
            ? d.Value
            : throw ByteServiceErrors.ToRpc(new RegistryException(ErrorCode.DigestInvalid, $"invalid digest '{text}'"));
}

/// <summary>Reads the data messages of a client stream as one byte stream.</summary>
internal sealed class GrpcChunkReadStream(IAsyncStreamReader<WriteRequest> reader, CancellationToken cancellationToken) : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _current;
    private bool _done;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        while (_current.IsEmpty)
        {
            if (_done)
            {
                return 0;
            }
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, cancellationToken);
            if (!await reader.MoveNext(linked.Token))
            {
                _done = true;
                return 0;
            }
            if (reader.Current.PartCase != WriteRequest.PartOneofCase.Data)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "only data may follow the header"));
            }
            _current = reader.Current.Data.Memory;
        }
        var n = Math.Min(buffer.Length, _current.Length);
        _current[..n].CopyTo(buffer);
        _current = _current[n..];
        return n;
    }
}
