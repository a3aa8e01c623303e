using System.Net;
using System.Text.Json.Nodes;

namespace Wharf.Tests.Observability;

[Collection(AllInOneCollection.Name)]
public sealed class HealthTests(AllInOneFixture registry)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task Healthz_answers_ok_while_the_process_is_alive()
    {
        using var r = await registry.Http.GetAsync("healthz", Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("ok", await r.Content.ReadAsStringAsync(Ct));
    }

    [Fact(Timeout = 30_000)]
    public async Task Readyz_reports_the_store_open_the_node_in_the_view_and_the_silo_active()
    {
        using var r = await registry.Http.GetAsync("readyz", Ct);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal("ready", (string?)body["status"]);
        Assert.Equal("open", (string?)body["checks"]!["store"]);
        Assert.Contains("Active", (string?)body["checks"]!["view"]);
        Assert.Equal("Active", (string?)body["checks"]!["orleans"]);
        Assert.Equal("1 active", (string?)body["checks"]!["owners"]);
    }
}
