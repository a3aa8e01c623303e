using Grpc.Core;
using Wharf.Contracts.Oci;

namespace Wharf.Contracts.Bytes;

/// <summary>
/// Carries a <see cref="RegistryException"/> across the byte service: the OCI code and status travel in trailers,
/// so the gateway answers the client with the same error the silo raised.
/// </summary>
public static class ByteServiceErrors
{
    private const string CodeKey = "oci-error";
    private const string StatusKey = "oci-status";

    public static RpcException ToRpc(RegistryException e)
    {
        var grpcStatus = e.Code.Status switch
        {
            404 => StatusCode.NotFound,
            503 => StatusCode.Unavailable,
            _ => StatusCode.FailedPrecondition,
        };
        return new RpcException(
            new Status(grpcStatus, e.Detail ?? e.Code.Message),
            new Metadata { { CodeKey, e.Code.Code }, { StatusKey, e.Code.Status.ToString(System.Globalization.CultureInfo.InvariantCulture) } });
    }

    /// <summary>The registry error an RPC failure means to a client.</summary>
    public static RegistryException FromRpc(RpcException e)
    {
        var code = e.Trailers.GetValue(CodeKey);
        if (code is not null)
        {
            _ = int.TryParse(e.Trailers.GetValue(StatusKey), out var status);
            return new RegistryException(ErrorCode.Find(code, status == 0 ? null : status), e.Status.Detail);
        }
        return e.StatusCode switch
        {
            StatusCode.Unavailable or StatusCode.DeadlineExceeded => new RegistryException(ErrorCode.Unavailable, "storage node unreachable: " + e.Status.Detail),
            StatusCode.Cancelled => new RegistryException(ErrorCode.Unavailable, "byte transfer cancelled"),
            _ => new RegistryException(ErrorCode.Unknown, e.Status.Detail),
        };
    }
}
