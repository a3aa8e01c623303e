namespace Wharf.Contracts.Oci;

/// <summary>
/// The one error-code table (distribution-spec "Error Codes", with the HTTP status each is answered with,
/// as CNCF Distribution's registry/api/errcode/register.go pairs them). Handlers only raise these.
/// </summary>
public sealed record ErrorCode(string Code, int Status, string Message)
{
    public static readonly ErrorCode BlobUnknown = new("BLOB_UNKNOWN", 404, "blob unknown to registry");
    public static readonly ErrorCode BlobUploadInvalid = new("BLOB_UPLOAD_INVALID", 400, "blob upload invalid");
    public static readonly ErrorCode BlobUploadUnknown = new("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry");
    public static readonly ErrorCode RangeInvalid = new("BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable");
    public static readonly ErrorCode DigestInvalid = new("DIGEST_INVALID", 400, "provided digest did not match uploaded content");
    public static readonly ErrorCode ManifestBlobUnknown = new("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry");
    public static readonly ErrorCode ManifestInvalid = new("MANIFEST_INVALID", 400, "manifest invalid");
    public static readonly ErrorCode ManifestUnknown = new("MANIFEST_UNKNOWN", 404, "manifest unknown to registry");
    public static readonly ErrorCode ManifestTooLarge = new("SIZE_INVALID", 413, "manifest exceeds the size limit");
    public static readonly ErrorCode NameInvalid = new("NAME_INVALID", 400, "invalid repository name");
    public static readonly ErrorCode NameUnknown = new("NAME_UNKNOWN", 404, "repository name not known to registry");
    public static readonly ErrorCode SizeInvalid = new("SIZE_INVALID", 400, "provided length did not match content length");
    public static readonly ErrorCode TagInvalid = new("TAG_INVALID", 400, "manifest tag did not match URI");
    public static readonly ErrorCode PaginationInvalid = new("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested");
    public static readonly ErrorCode Unauthorized = new("UNAUTHORIZED", 401, "authentication required");
    public static readonly ErrorCode Denied = new("DENIED", 403, "requested access to the resource is denied");
    public static readonly ErrorCode Unsupported = new("UNSUPPORTED", 405, "the operation is unsupported");
    public static readonly ErrorCode TooManyRequests = new("TOOMANYREQUESTS", 429, "too many requests");
    public static readonly ErrorCode Unavailable = new("UNAVAILABLE", 503, "service unavailable");
    public static readonly ErrorCode Unknown = new("UNKNOWN", 500, "unknown error");

    public static readonly IReadOnlyList<ErrorCode> All =
    [
        BlobUnknown, BlobUploadInvalid, BlobUploadUnknown, RangeInvalid, DigestInvalid, ManifestBlobUnknown,
        ManifestInvalid, ManifestUnknown, ManifestTooLarge, NameInvalid, NameUnknown, SizeInvalid, TagInvalid,
        PaginationInvalid, Unauthorized, Denied, Unsupported, TooManyRequests, Unavailable, Unknown,
    ];

    /// <summary>The entry with this code (and status, where one code is answered with two statuses).</summary>
    public static ErrorCode Find(string code, int? status = null) =>
        All.FirstOrDefault(e => e.Code == code && (status is null || e.Status == status))
        ?? All.FirstOrDefault(e => e.Code == code)
        ?? Unknown;
}

/// <summary>Raised anywhere below a handler; the gateway turns it into the spec's JSON error body.</summary>
public sealed class RegistryException(ErrorCode code, string? detail = null) : Exception(detail ?? code.Message)
{
    public ErrorCode Code { get; } = code;
    public string? Detail { get; } = detail;
}
