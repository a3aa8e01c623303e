using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Wharf.Contracts.Oci;

namespace Wharf.Gateway.Errors;

/// <summary>Writes the spec's error body: <c>{"errors":[{"code","message","detail"}]}</c> (spec.md "Error Codes").</summary>
public static class OciError
{
    public static async Task WriteAsync(HttpContext context, ErrorCode code, string? detail = null, int? status = null)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            context.Abort();
            return;
        }
        response.StatusCode = status ?? code.Status;
        if (response.StatusCode == StatusCodes.Status503ServiceUnavailable)
        {
            response.Headers.RetryAfter = "5";
        }
        response.ContentType = "application/json; charset=utf-8";
        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            errors = new[] { new { code = code.Code, message = code.Message, detail } },
        });
        response.ContentLength = body.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(body);
        }
    }
}
