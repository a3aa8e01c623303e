using System.Net;
using System.Text.Json;
using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Bytes;

/// <summary>
/// The byte service's bulk path: reads, blob writes and upload appends as plain HTTP/1.1 bodies on a silo's bulk port
/// (<c>Wharf:Bytes:BulkPort</c>), beside the gRPC service that keeps the small calls (docs/architecture.md "The byte
/// path"). Version 1; paths and headers are only ever added.
/// <list type="bullet">
/// <item><c>GET {Prefix}/blobs/{digest}?offset=&amp;length=</c>: the bytes, with their Content-Length.</item>
/// <item><c>PUT {Prefix}/blobs/{digest}</c> (optional <see cref="ExpectedLengthHeader"/>): verified and synced; the
/// size comes back in <see cref="LengthHeader"/>.</item>
/// <item><c>POST {Prefix}/uploads/{id}?offset=</c>: appended and synced; the part's length in <see cref="LengthHeader"/>.</item>
/// </list>
/// Failures are the registry's JSON errors (<c>{"errors":[{"code"...}]}</c>) with the registry's status.
/// </summary>
public static class BulkBytes
{
    public const string Prefix = "/bytes/v1";
    public const string ExpectedLengthHeader = "Wharf-Expected-Length";
    public const string LengthHeader = "Wharf-Length";

    /// <summary>
    /// The registry error a failed bulk call means to a client: the silo's own error when it sent one; a refused
    /// cluster secret or any other answer as UNAVAILABLE (the node cannot serve this gateway, which another may).
    /// </summary>
    public static async Task<RegistryException> ErrorOfAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        string? code = null;
        string? detail = null;
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            using var json = JsonDocument.Parse(body);
            var first = json.RootElement.GetProperty("errors")[0];
            code = first.GetProperty("code").GetString();
            detail = first.TryGetProperty("detail", out var d) ? d.GetString() : null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or HttpRequestException or IOException)
        {
            // Not the registry's error body: a proxy, or a node on its way down.
        }
        if (code is null || response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            return new RegistryException(ErrorCode.Unavailable, $"storage node answered {status}{(detail is null ? "" : ": " + detail)}");
        }
        return new RegistryException(ErrorCode.Find(code, status), detail);
    }
}
