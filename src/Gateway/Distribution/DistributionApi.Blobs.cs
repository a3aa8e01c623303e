using Microsoft.AspNetCore.Http;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Caching;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Distribution;

// GET / HEAD / DELETE /v2/<name>/blobs/<digest> (spec.md "Pulling blobs", "Deleting blobs").
public sealed partial class DistributionApi
{
    private async Task GetBlobAsync(HttpContext context, string name, string digestText)
    {
        var digest = ParseDigest(digestText);
        // Blobs are scoped: a repository serves only what it links, never merely what another repository holds.
        var link = await Repository(name).GetBlobLink(digest);
        if (link is null)
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUnknown, $"blob {digest} is not in repository {name}");
            return;
        }
        await WriteBlobAsync(context, digest, link.Size, "application/octet-stream", link.Holders);
    }

    /// <summary>Answers a blob or manifest body with Range support (RFC 9110 §14).</summary>
    private async Task WriteBlobAsync(HttpContext context, Digest digest, long size, string contentType, string[] holders)
    {
        var response = context.Response;
        response.Headers[DigestHeader] = digest.ToString();
        response.Headers.ETag = $"\"{digest}\"";
        response.Headers.AcceptRanges = "bytes";
        response.ContentType = contentType;
        long offset = 0, length = size;
        var rangeHeader = context.Request.Headers.Range.ToString();
        if (rangeHeader.Length > 0)
        {
            switch (ByteRange.Parse(rangeHeader, size, out var start, out var end))
            {
                case ByteRange.Result.Satisfiable:
                    offset = start;
                    length = end - start + 1;
                    response.StatusCode = StatusCodes.Status206PartialContent;
                    response.Headers.ContentRange = $"bytes {start}-{end}/{size}";
                    break;
                case ByteRange.Result.Unsatisfiable:
                    response.Headers.ContentRange = $"bytes */{size}";
                    await OciError.WriteAsync(context, ErrorCode.RangeInvalid, $"range {rangeHeader} is outside 0-{size - 1}", StatusCodes.Status416RangeNotSatisfiable);
                    return;
                default:
                    break; // A malformed Range header is ignored (RFC 9110 §14.2): the whole body follows.
            }
        }
        response.ContentLength = length;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }
        if (blobs.Keeps(size))
        {
            var lookup = await blobs.GetAsync(digest, size, () => FetchWholeBlobAsync(digest, size, holders), context.RequestAborted);
            if (lookup.Cached)
            {
                if (lookup.Body is null)
                {
                    await OciError.WriteAsync(context, ErrorCode.BlobUnknown, $"bytes of {digest} are not available");
                    return;
                }
                await response.Body.WriteAsync(lookup.Body.AsMemory((int)offset, (int)length), context.RequestAborted);
                return;
            }
        }
        await using var stream = await OpenBlobAsync(digest, offset, length, holders, context.RequestAborted);
        if (stream is null)
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUnknown, $"bytes of {digest} are not available");
            return;
        }
        await Bytes.ResponseCopy.CopyAsync(stream, response, context.RequestAborted);
    }

    /// <summary>
    /// A whole blob for the blob cache: one fetch shared by every request that missed it, so it follows no request's
    /// cancellation, but a node that stops sending cannot hold it (and its waiters) past <see cref="WholeBlobTimeout"/>.
    /// </summary>
    private async Task<byte[]?> FetchWholeBlobAsync(Digest digest, long size, string[] holders)
    {
        using var timeout = new CancellationTokenSource(WholeBlobTimeout);
        try
        {
            await using var stream = await OpenBlobAsync(digest, 0, size, holders, timeout.Token);
            if (stream is null)
            {
                return null;
            }
            var body = GC.AllocateUninitializedArray<byte>(checked((int)size));
            await stream.ReadExactlyAsync(body, timeout.Token);
            return body;
        }
        catch (EndOfStreamException)
        {
            throw new RegistryException(ErrorCode.Unavailable, $"the bytes of {digest} ended before {size} bytes");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new RegistryException(ErrorCode.Unavailable, $"the bytes of {digest} did not arrive within {WholeBlobTimeout.TotalSeconds:0} s");
        }
    }

    private static readonly TimeSpan WholeBlobTimeout = TimeSpan.FromSeconds(30);

    private async Task DeleteBlobAsync(HttpContext context, string name, string digestText)
    {
        var digest = ParseDigest(digestText);
        if (!await Repository(name).UnlinkBlob(digest))
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUnknown, $"blob {digest} is not in repository {name}");
            return;
        }
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.ContentLength = 0;
    }
}

/// <summary>A single byte range <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c>.</summary>
public static class ByteRange
{
    public enum Result
    {
        Satisfiable,
        Unsatisfiable,
        Ignored,
    }

    public static Result Parse(string header, long size, out long start, out long end)
    {
        start = end = 0;
        var text = header.Trim();
        if (!text.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || text.Contains(','))
        {
            return Result.Ignored; // Not a single byte range: serve the whole representation.
        }
        var spec = text[6..].Trim();
        var dash = spec.IndexOf('-');
        if (dash < 0)
        {
            return Result.Ignored;
        }
        var first = spec[..dash].Trim();
        var last = spec[(dash + 1)..].Trim();
        if (first.Length == 0)
        {
            if (!long.TryParse(last, System.Globalization.NumberStyles.None, null, out var suffix))
            {
                return Result.Ignored;
            }
            if (suffix == 0 || size == 0)
            {
                return Result.Unsatisfiable;
            }
            start = Math.Max(0, size - suffix);
            end = size - 1;
            return Result.Satisfiable;
        }
        if (!long.TryParse(first, System.Globalization.NumberStyles.None, null, out start))
        {
            return Result.Ignored;
        }
        if (last.Length == 0)
        {
            end = size - 1;
        }
        else if (!long.TryParse(last, System.Globalization.NumberStyles.None, null, out end))
        {
            return Result.Ignored;
        }
        else if (end < start)
        {
            // An inverted range (RFC 9110 §14.1.1 calls it invalid) is refused with 416, as Distribution does and as
            // the distribution-spec conformance suite ("range 500-0") requires; serving the whole blob fails it.
            return Result.Unsatisfiable;
        }
        if (start >= size)
        {
            return Result.Unsatisfiable;
        }
        end = Math.Min(end, size - 1);
        return Result.Satisfiable;
    }
}
