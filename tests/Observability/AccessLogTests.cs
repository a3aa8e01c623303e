using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Wharf.Silo;

namespace Wharf.Tests.Observability;

/// <summary>The access log, turned on with <c>Wharf:AccessLog:Enabled</c> and written to <c>Wharf:AccessLog:Path</c>.</summary>
public sealed class AccessLogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task Each_request_is_a_json_line_with_method_route_status_bytes_and_trace_id_but_no_query_or_credentials()
    {
        var data = Path.Combine(Path.GetTempPath(), "wharf-obs-log-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        var logFile = Path.Combine(data, "access.log");
        var app = AllInOne.Build(
            ["--urls", "http://127.0.0.1:0", $"--Wharf:DataPath={data}", "--Wharf:AccessLog:Enabled=true", $"--Wharf:AccessLog:Path={logFile}"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning))!;
        await app.StartAsync(Ct);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single().TrimEnd('/') + "/") };
            var repo = "obs/log-" + Guid.NewGuid().ToString("N")[..8];
            var (_, layer, manifest) = await Push.ImageAsync(http, repo, "v1", 5000, Ct);
            using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/v1?token=query-secret");
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer header-secret");
            request.Headers.TryAddWithoutValidation("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
            using var get = await http.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);

            var deadline = DateTime.UtcNow.AddSeconds(10);
            var lines = Array.Empty<JsonNode>();
            while (DateTime.UtcNow < deadline)
            {
                var text = File.Exists(logFile) ? await File.ReadAllTextAsync(logFile, Ct) : "";
                lines = [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!)];
                if (lines.Any(l => (string?)l["method"] == "GET"))
                {
                    Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
                    Assert.DoesNotContain("token=", text, StringComparison.Ordinal);
                    break;
                }
                await Task.Delay(50, Ct);
            }
            Assert.Equal(6, lines.Length); // POST, PATCH, PUT (config), POST (layer), PUT (manifest), GET
            var pull = Assert.Single(lines, l => (string?)l["method"] == "GET");
            Assert.Equal($"/v2/{repo}/manifests/v1", (string?)pull["path"]);
            Assert.Equal("manifest", (string?)pull["route"]);
            Assert.Equal(200, (int?)pull["status"]);
            Assert.Equal(manifest.Length, (long?)pull["bytes_out"]);
            Assert.Equal("0af7651916cd43dd8448eb211c80319c", (string?)pull["trace_id"]);
            Assert.Equal("127.0.0.1", (string?)pull["client"]);
            Assert.True((double?)pull["duration_ms"] > 0);
            var monolithic = Assert.Single(lines, l => (string?)l["method"] == "POST" && (int?)l["status"] == 201);
            Assert.Equal(layer.Length, (long?)monolithic["bytes_in"]);
            Assert.Equal("upload", (string?)monolithic["route"]);
        }
        finally
        {
            await app.StopAsync(Ct);
            await app.DisposeAsync();
            try
            {
                Directory.Delete(data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
