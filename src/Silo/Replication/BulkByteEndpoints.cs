using System.Diagnostics;
using System.Globalization;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Errors;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Replication;

/// <summary>
/// The byte service's bulk calls on plain HTTP/1.1 (<see cref="BulkBytes"/>): reads, blob writes and upload appends,
/// with the bytes as the request or response body and nothing around them. The same <see cref="BlobStore"/> calls as
/// <see cref="ByteServiceEndpoint"/> (gRPC, which keeps the small calls and serves peers that do not know this path).
/// Errors are the registry's JSON errors with the status the registry gives them.
/// </summary>
public static class BulkByteEndpoints
{
    public static void MapBulkBytes(this IEndpointRouteBuilder app, int port)
    {
        var group = app.MapGroup(BulkBytes.Prefix).RequireHost($"*:{port}");
        group.MapGet("/blobs/{digest}", ReadAsync);
        group.MapPut("/blobs/{digest}", WriteBlobAsync);
        group.MapPost("/uploads/{uploadId}", AppendUploadAsync);
    }

    private static async Task ReadAsync(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<BlobStore>();
        var observed = Observe(context, "Read");
        try
        {
            var digest = ParseDigest(context);
            var offset = QueryLong(context, "offset") ?? 0;
            var length = QueryLong(context, "length") ?? throw new RegistryException(ErrorCode.Unsupported, "a read names its length");
            await using var stream = await store.OpenReadAsync(digest, offset, length, context.RequestAborted)
                ?? throw new RegistryException(ErrorCode.BlobUnknown, $"{digest} is not on this node");
            context.Response.ContentType = "application/octet-stream";
            context.Response.ContentLength = length;
            await Wharf.Gateway.Bytes.ResponseCopy.CopyAsync(stream, context.Response, context.RequestAborted);
        }
        catch (RegistryException e) when (!context.Response.HasStarted)
        {
            await WriteErrorAsync(context, e);
        }
        finally
        {
            observed.Dispose();
        }
    }

    private static async Task WriteBlobAsync(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<BlobStore>();
        using var observed = Observe(context, "WriteBlob");
        try
        {
            var digest = ParseDigest(context);
            long? expected = context.Request.Headers[BulkBytes.ExpectedLengthHeader] is [{ } text]
                ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : throw new RegistryException(ErrorCode.SizeInvalid, "bad expected length")
                : null;
            var size = await store.WriteBlobAsync(digest, context.Request.Body, expected, context.RequestAborted);
            context.Response.Headers[BulkBytes.LengthHeader] = size.ToString(CultureInfo.InvariantCulture);
        }
        catch (RegistryException e)
        {
            await WriteErrorAsync(context, e);
        }
    }

    private static async Task AppendUploadAsync(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<BlobStore>();
        using var observed = Observe(context, "AppendUpload");
        try
        {
            var uploadId = (string)context.Request.RouteValues["uploadId"]!;
            var offset = QueryLong(context, "offset") ?? throw new RegistryException(ErrorCode.Unsupported, "an append names its offset");
            var length = await store.AppendUploadAsync(uploadId, offset, context.Request.Body, context.RequestAborted);
            context.Response.Headers[BulkBytes.LengthHeader] = length.ToString(CultureInfo.InvariantCulture);
        }
        catch (RegistryException e)
        {
            await WriteErrorAsync(context, e);
        }
    }

    private static Task WriteErrorAsync(HttpContext context, RegistryException e) =>
        OciError.WriteAsync(context, e.Code, e.Detail ?? e.Code.Message);

    private static Digest ParseDigest(HttpContext context) =>
        Digest.TryParse((string?)context.Request.RouteValues["digest"], out var d)
            ? d.Value
            : throw new RegistryException(ErrorCode.DigestInvalid, $"invalid digest '{context.Request.RouteValues["digest"]}'");

    private static long? QueryLong(HttpContext context, string name) =>
        context.Request.Query[name] is [{ } text]
            ? long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw new RegistryException(ErrorCode.Unsupported, $"bad {name} '{text}'")
            : null;

    /// <summary>The same RPC attributes and metrics as a gRPC call of the method (<see cref="Observability.ByteServiceObservation"/>).</summary>
    private static IDisposable Observe(HttpContext context, string method)
    {
        var observation = context.RequestServices.GetRequiredService<Observability.ByteServiceObservation>();
        return observation.Begin(context, method);
    }
}
