using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.ExceptionServices;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// <see cref="IByteService"/> on a silo's bulk port (<see cref="BulkBytes"/>): reads, blob writes and upload appends as
/// plain HTTP/1.1 bodies, the small calls (stat, commit, delete) on its gRPC service. HTTP/1.1 moves the same bytes
/// for a third to a half of the CPU that gRPC over HTTP/2 takes in .NET (FACTS, docs/performance.md): one copy from
/// the socket into the caller's buffer, no 16 KiB frames, flow-control windows or per-message buffers.
/// Failures come back as the registry errors the silo raised, an unreachable silo as 503 UNAVAILABLE, and a client
/// body that broke as its own exception (not the node's fault).
/// </summary>
public sealed class HttpByteService(HttpClient http, Uri bulkEndpoint, IByteService small) : IByteService
{
    public const int CopyBuffer = 256 * 1024;

    public Task<long?> StatAsync(Digest digest, CancellationToken cancellationToken) => small.StatAsync(digest, cancellationToken);

    public Task CommitUploadAsync(string uploadId, Digest digest, long length, CancellationToken cancellationToken) =>
        small.CommitUploadAsync(uploadId, digest, length, cancellationToken);

    public Task DeleteUploadAsync(string uploadId, CancellationToken cancellationToken) => small.DeleteUploadAsync(uploadId, cancellationToken);

    public async Task<Stream?> OpenReadAsync(Digest digest, long offset, long length, CancellationToken cancellationToken)
    {
        var request = Request(HttpMethod.Get, string.Create(CultureInfo.InvariantCulture, $"{BulkBytes.Prefix}/blobs/{digest}?offset={offset}&length={length}"));
        var response = await SendAsync(request, null, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        using (response)
        {
            var error = await BulkBytes.ErrorOfAsync(response, cancellationToken);
            return error.Code == ErrorCode.BlobUnknown ? null : throw error;
        }
    }

    public Task<long> WriteBlobAsync(Digest digest, Stream content, long? expectedLength, CancellationToken cancellationToken)
    {
        var request = Request(HttpMethod.Put, $"{BulkBytes.Prefix}/blobs/{digest}");
        if (expectedLength is { } expected)
        {
            request.Headers.TryAddWithoutValidation(BulkBytes.ExpectedLengthHeader, expected.ToString(CultureInfo.InvariantCulture));
        }
        return WriteAsync(request, content, cancellationToken);
    }

    public Task<long> AppendUploadAsync(string uploadId, long offset, Stream content, CancellationToken cancellationToken) =>
        WriteAsync(
            Request(HttpMethod.Post, string.Create(CultureInfo.InvariantCulture, $"{BulkBytes.Prefix}/uploads/{Uri.EscapeDataString(uploadId)}?offset={offset}")),
            content,
            cancellationToken);

    private async Task<long> WriteAsync(HttpRequestMessage request, Stream content, CancellationToken cancellationToken)
    {
        var source = new SourceStream(content);
        request.Content = new StreamContent(source, CopyBuffer);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Headers.TransferEncodingChunked = true;
        using var response = await SendAsync(request, source, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw await BulkBytes.ErrorOfAsync(response, cancellationToken);
        }
        return response.Headers.TryGetValues(BulkBytes.LengthHeader, out var values)
            && long.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            ? length
            : throw new RegistryException(ErrorCode.Unavailable, "storage node answered a write without its length");
    }

    private HttpRequestMessage Request(HttpMethod method, string pathAndQuery) =>
        new(method, new Uri(bulkEndpoint, pathAndQuery)) { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    /// <summary>Sends; a failure of the content's own source is rethrown as itself, any other transport failure is UNAVAILABLE.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, SourceStream? source, CancellationToken cancellationToken)
    {
        try
        {
            return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (Exception e) when (source?.Failure is { } failure && e is not RegistryException)
        {
            ExceptionDispatchInfo.Throw(failure);
            throw;
        }
        catch (HttpRequestException e)
        {
            throw new RegistryException(ErrorCode.Unavailable, "storage node unreachable: " + e.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new RegistryException(ErrorCode.Unavailable, "storage node did not answer");
        }
        finally
        {
            request.Dispose();
        }
    }

    /// <summary>The caller's content, remembering what it threw (a client's body that broke, a stall cancelled by the fan-out).</summary>
    private sealed class SourceStream(Stream inner) : ReadOnlyStream
    {
        public Exception? Failure { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken);
            }
            catch (Exception e)
            {
                Failure ??= e;
                throw;
            }
        }
    }

    /// <summary>A response body whose disposal ends the response (and returns or closes its connection).</summary>
    private sealed class ResponseStream(HttpResponseMessage response, Stream body) : ReadOnlyStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => body.ReadAsync(buffer, cancellationToken);

        public override int Read(Span<byte> buffer) => body.Read(buffer);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                body.Dispose();
                response.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
