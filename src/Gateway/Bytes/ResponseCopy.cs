using Microsoft.AspNetCore.Http;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// Streams a body into an HTTP response through Kestrel's own buffers: each read lands in memory the response pipe
/// hands out and is sent from there, one copy fewer than reading into a buffer and writing it to <c>Response.Body</c>
/// (which copies it again into the pipe). Used by the gateway's blob GET and the silo's bulk reads.
/// </summary>
public static class ResponseCopy
{
    /// <summary>How much one read asks for.</summary>
    public const int ReadSize = 256 * 1024;

    public static async Task CopyAsync(Stream source, HttpResponse response, CancellationToken cancellationToken)
    {
        var writer = response.BodyWriter;
        while (true)
        {
            var memory = writer.GetMemory(ReadSize);
            var n = await source.ReadAsync(memory, cancellationToken);
            if (n == 0)
            {
                return;
            }
            writer.Advance(n);
            var flushed = await writer.FlushAsync(cancellationToken);
            if (flushed.IsCompleted || flushed.IsCanceled)
            {
                return;
            }
        }
    }
}
