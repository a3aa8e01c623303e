using System.Net.Http.Json;
using System.Text.Json;

namespace Wharf.Cli;

/// <summary>
/// <c>wharf node drain|forget</c> and <c>wharf replication set</c>: the silo admin API's edits of the placement view
/// (docs/architecture.md "View changes and the coordinator"). One line on success; a refusal is the server's message
/// on stderr and exit code 1.
/// </summary>
public static class AdminCommands
{
    public static Task<string> DrainAsync(HttpClient http, string nodeId, CancellationToken ct) =>
        SendAsync(http, HttpMethod.Post, $"admin/nodes/{Uri.EscapeDataString(nodeId)}/drain", null, ct);

    public static Task<string> ForgetAsync(HttpClient http, string nodeId, CancellationToken ct) =>
        SendAsync(http, HttpMethod.Post, $"admin/nodes/{Uri.EscapeDataString(nodeId)}/forget", null, ct);

    public static Task<string> SetReplicationAsync(HttpClient http, int replicas, int writeQuorum, CancellationToken ct) =>
        SendAsync(http, HttpMethod.Put, "admin/replication", JsonContent.Create(new { replicas, writeQuorum }), ct);

    /// <summary>The server's message and the view epoch it wrote, as one line.</summary>
    private static async Task<string> SendAsync(HttpClient http, HttpMethod method, string path, HttpContent? content, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            response = await http.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            throw new CliException($"cannot reach {http.BaseAddress}: {e.Message}");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonElement? body = null;
            try
            {
                body = JsonDocument.Parse(text).RootElement.Clone();
            }
            catch (JsonException)
            {
            }
            if (!response.IsSuccessStatusCode)
            {
                if (body is { ValueKind: JsonValueKind.Object } error && error.TryGetProperty("message", out var message))
                {
                    var code = error.TryGetProperty("error", out var c) ? c.GetString() : null;
                    throw new CliException($"{message.GetString()} ({code}, {(int)response.StatusCode})");
                }
                throw new CliException($"{method} {http.BaseAddress}{path} answered {(int)response.StatusCode} {response.ReasonPhrase} (is --admin a silo's HTTP address?)");
            }
            if (body is { ValueKind: JsonValueKind.Object } ok && ok.TryGetProperty("message", out var done))
            {
                return ok.TryGetProperty("epoch", out var epoch) ? $"{done.GetString()} (placement view epoch {epoch.GetInt64()})" : done.GetString() ?? "";
            }
            return text;
        }
    }
}
