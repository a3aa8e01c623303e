using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Wharf.Contracts.Grains;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Errors;

namespace Wharf.Gateway.Distribution;

// POST / PATCH / PUT / GET / DELETE /v2/<name>/blobs/uploads/ (spec.md "Pushing blobs", "Mounting a blob").
// The gateway streams each chunk to the upload's owners in parallel, hashing it once as it passes; once W owners
// synced it, it records the new offset, the hash midstate and the owners that have it in the session (DESIGN
// principles 4 and 8). Nothing is read back.
public sealed partial class DistributionApi
{
    [GeneratedRegex("^[0-9a-f]{32}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex UploadIdPattern();

    private async Task StartUploadAsync(HttpContext context, string name)
    {
        AllowUnboundedBody(context);
        var q = context.Request.Query;
        var repository = Repository(name);

        if (q.TryGetValue("mount", out var mountText) && mountText.ToString().Length > 0)
        {
            var mounted = await TryMountAsync(context, name, mountText.ToString(), q["from"].ToString());
            if (mounted)
            {
                return;
            }
            // Not mountable: the spec says answer with a new upload session (202) instead.
        }
        else if (q.TryGetValue("digest", out var digestText))
        {
            // Single-POST monolithic upload: the digest is known up front, so bytes go straight to the store.
            var digest = ParseDigest(digestText.ToString());
            var (size, holders) = await WriteToOwnersAsync(digest, context.Request.Body, context.Request.ContentLength, context.RequestAborted);
            await repository.LinkBlob(digest, size, holders);
            BlobCreated(context, name, digest);
            return;
        }

        var algorithm = q.TryGetValue("digest-algorithm", out var alg) ? alg.ToString() : Digest.Sha256;
        if (!Digest.IsSupportedAlgorithm(algorithm))
        {
            await OciError.WriteAsync(context, ErrorCode.DigestInvalid, $"unsupported digest algorithm '{algorithm}'");
            return;
        }
        var id = Guid.NewGuid().ToString("N");
        await grains.GetGrain<IUploadSessionGrain>(id).Start(name, algorithm, [.. router.OwnersOfUpload(id)]);
        UploadAccepted(context, name, id, 0, StatusCodes.Status202Accepted);
    }

    private async Task<bool> TryMountAsync(HttpContext context, string name, string mountText, string from)
    {
        if (!Digest.TryParse(mountText, out var digest) || !Names.IsValidName(from))
        {
            return false;
        }
        // A mount needs pull on `from`; without it the caller gets a plain upload session, exactly as when `from`
        // lacks the blob, so the answer reveals nothing about `from` (issue 14).
        if (Auth.RegistryAccess.Of(context) is { } access && !access.Allows(from, Auth.AccessPolicy.Pull))
        {
            return false;
        }
        var link = await Repository(from).GetBlobLink(digest.Value);
        if (link is null)
        {
            return false;
        }
        await Repository(name).LinkBlob(digest.Value, link.Size, link.Holders);
        BlobCreated(context, name, digest.Value);
        return true;
    }

    private async Task UploadStatusAsync(HttpContext context, string name, string id)
    {
        var state = UploadIdPattern().IsMatch(id) ? await grains.GetGrain<IUploadSessionGrain>(id).Get() : null;
        if (state is null || state.Repository != name)
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUploadUnknown);
            return;
        }
        UploadAccepted(context, name, id, state.Offset, StatusCodes.Status204NoContent);
    }

    private async Task PatchUploadAsync(HttpContext context, string name, string id)
    {
        AllowUnboundedBody(context);
        await WithChunkAsync(context, name, id, async (session, lease) =>
        {
            var (ok, offset, _, _) = await AppendChunkAsync(context, name, id, session, lease);
            if (ok)
            {
                UploadAccepted(context, name, id, offset, StatusCodes.Status202Accepted);
            }
            return false;
        });
    }

    private async Task PutUploadAsync(HttpContext context, string name, string id)
    {
        AllowUnboundedBody(context);
        var digestText = context.Request.Query["digest"].ToString();
        if (!Digest.TryParse(digestText, out var parsed))
        {
            await OciError.WriteAsync(context, ErrorCode.DigestInvalid, digestText.Length == 0 ? "the digest parameter is required" : $"invalid digest '{digestText}'");
            return;
        }
        var digest = parsed.Value;
        await WithChunkAsync(context, name, id, async (session, lease) =>
        {
            if (lease.State.Algorithm != digest.Algorithm)
            {
                await OciError.WriteAsync(context, ErrorCode.DigestInvalid, $"the upload was started for {lease.State.Algorithm}, not {digest.Algorithm}");
                return false;
            }
            var (ok, length, hashState, owners) = await AppendChunkAsync(context, name, id, session, lease);
            if (!ok)
            {
                return false;
            }
            using var hash = ResumableHash.Restore(hashState);
            if (hash.FinishDigest() != digest)
            {
                await OciError.WriteAsync(context, ErrorCode.DigestInvalid, $"uploaded content does not match {digest}");
                return false;
            }
            // Every owner still in the upload commits (a rename each); the link names those that did (W at least).
            var holders = await writer.CommitUploadAsync(id, owners, digest, length, context.RequestAborted);
            await Repository(name).LinkBlob(digest, length, holders);
            await session.End();
            await writer.DeleteUploadAsync(id, owners);
            BlobCreated(context, name, digest);
            return true;
        });
    }

    private async Task CancelUploadAsync(HttpContext context, string name, string id)
    {
        var session = UploadIdPattern().IsMatch(id) ? grains.GetGrain<IUploadSessionGrain>(id) : null;
        var state = session is null ? null : await session.Get();
        if (session is null || state is null || state.Repository != name)
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUploadUnknown);
            return;
        }
        await session.End();
        await writer.DeleteUploadAsync(id, UploadOwners(id, state));
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>
    /// Holds the session's chunk lease around <paramref name="body"/>, so two requests never interleave bytes. The body
    /// returns true when it ended the session: the lease went with it, and a release would only wake the finished
    /// session's grain again (a new activation recovering a log that was just forgotten).
    /// </summary>
    private async Task WithChunkAsync(HttpContext context, string name, string id, Func<IUploadSessionGrain, ChunkLease, Task<bool>> body)
    {
        if (!UploadIdPattern().IsMatch(id))
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUploadUnknown);
            return;
        }
        var session = grains.GetGrain<IUploadSessionGrain>(id);
        var lease = await session.BeginChunk(name);
        if (lease is null)
        {
            await OciError.WriteAsync(context, ErrorCode.BlobUploadUnknown);
            return;
        }
        if (lease.Token == Guid.Empty)
        {
            UploadHeaders(context, name, id, lease.State.Offset);
            await OciError.WriteAsync(context, ErrorCode.RangeInvalid, "another request is writing to this upload", StatusCodes.Status416RangeNotSatisfiable);
            return;
        }
        var ended = false;
        try
        {
            ended = await body(session, lease);
        }
        finally
        {
            if (!ended)
            {
                await session.ReleaseChunk(lease.Token);
            }
        }
    }

    /// <summary>
    /// Streams the request body (if any) onto the upload's owners at the session's offset, hashing it once here.
    /// Returns the acknowledged length, hash state and the owners that have every byte; on a range error the error
    /// is already written and ok is false.
    /// </summary>
    private async Task<(bool Ok, long Length, byte[] HashState, string[] Owners)> AppendChunkAsync(
        HttpContext context, string name, string id, IUploadSessionGrain session, ChunkLease lease)
    {
        var state = lease.State;
        var request = context.Request;
        var contentRange = request.Headers.ContentRange.ToString();
        long? expectedCount = null;
        if (contentRange.Length > 0)
        {
            if (!ContentRange.TryParse(contentRange, out var start, out var end))
            {
                UploadHeaders(context, name, id, state.Offset);
                await OciError.WriteAsync(context, ErrorCode.RangeInvalid, $"malformed Content-Range '{contentRange}'", StatusCodes.Status416RangeNotSatisfiable);
                return (false, 0, [], []);
            }
            if (start != state.Offset)
            {
                // Chunks must arrive in order with no gap or overlap (spec.md "Pushing a blob in chunks").
                UploadHeaders(context, name, id, state.Offset);
                await OciError.WriteAsync(context, ErrorCode.RangeInvalid, $"chunk starts at {start}, the upload is at {state.Offset}", StatusCodes.Status416RangeNotSatisfiable);
                return (false, 0, [], []);
            }
            expectedCount = end - start + 1;
            if (request.ContentLength is { } cl && cl != expectedCount)
            {
                await OciError.WriteAsync(context, ErrorCode.SizeInvalid, $"Content-Length {cl} does not match Content-Range {contentRange}");
                return (false, 0, [], []);
            }
        }
        var hasBody = request.ContentLength is > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        if (!hasBody)
        {
            return (true, state.Offset, state.HashState, UploadOwners(id, state));
        }
        using var hash = ResumableHash.Restore(state.HashState);
        var hashing = new HashingReadStream(request.Body, hash);
        var (length, owners) = await writer.AppendUploadAsync(id, UploadOwners(id, state), state.Offset, hashing, context.RequestAborted);
        if (length != state.Offset + hashing.BytesRead)
        {
            throw new RegistryException(ErrorCode.BlobUploadInvalid, "upload length disagrees with the bytes received");
        }
        if (expectedCount is { } count && count != hashing.BytesRead)
        {
            await OciError.WriteAsync(context, ErrorCode.SizeInvalid, $"received {hashing.BytesRead} bytes, Content-Range announced {count}");
            return (false, 0, [], []);
        }
        var hashState = hash.ExportState();
        // An owner that missed this chunk leaves the upload: the record keeps only those that have every byte.
        if (!await session.CompleteChunk(lease.Token, length, hashState, owners, state.Offset))
        {
            throw new RegistryException(ErrorCode.BlobUploadUnknown, "the upload ended while the chunk was written");
        }
        return (true, length, hashState, owners);
    }

    private static void UploadHeaders(HttpContext context, string name, string id, long offset)
    {
        var h = context.Response.Headers;
        h.Location = $"/v2/{name}/blobs/uploads/{id}";
        // Distribution's convention: "0-<last byte>", and "0-0" before the first byte.
        h.Range = $"0-{Math.Max(0, offset - 1)}";
        h["Docker-Upload-UUID"] = id;
    }

    private static void UploadAccepted(HttpContext context, string name, string id, long offset, int status)
    {
        UploadHeaders(context, name, id, offset);
        context.Response.StatusCode = status;
        context.Response.ContentLength = 0;
    }

    private static void BlobCreated(HttpContext context, string name, Digest digest)
    {
        context.Response.StatusCode = StatusCodes.Status201Created;
        context.Response.Headers.Location = $"/v2/{name}/blobs/{digest}";
        context.Response.Headers[DigestHeader] = digest.ToString();
        context.Response.ContentLength = 0;
    }
}

/// <summary>
/// The <c>Content-Range</c> of a chunk PATCH: <c>&lt;start&gt;-&lt;end&gt;</c>, inclusive (spec.md "Pushing a blob in chunks"),
/// also accepted in the RFC 9110 form <c>bytes start-end/size</c> that some clients send.
/// </summary>
public static class ContentRange
{
    public static bool TryParse(string text, out long start, out long end)
    {
        start = end = 0;
        var t = text.Trim();
        if (t.StartsWith("bytes", StringComparison.OrdinalIgnoreCase))
        {
            t = t[5..].TrimStart(' ', '=');
        }
        var slash = t.IndexOf('/');
        if (slash >= 0)
        {
            t = t[..slash];
        }
        var dash = t.IndexOf('-');
        return dash > 0
            && long.TryParse(t[..dash], System.Globalization.NumberStyles.None, null, out start)
            && long.TryParse(t[(dash + 1)..], System.Globalization.NumberStyles.None, null, out end)
            // Its length, end - start + 1, must fit a long: 0-9223372036854775807 would count a negative chunk.
            && end >= start && end < long.MaxValue;
    }
}
