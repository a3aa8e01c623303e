using System.Text.Json;
using Spectre.Console;

namespace Wharf.Cli;

/// <summary><c>wharf status</c>: a silo's <c>/admin/cluster</c> (the placement view and Orleans' membership) as tables.</summary>
public static class StatusCommand
{
    private static readonly string[] States = ["Active", "Down", "Draining", "Removed", "Joining"];

    public static async Task<int> RunAsync(HttpClient http, bool json, IAnsiConsole console, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync("admin/cluster", ct);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"cannot reach {http.BaseAddress}: {e.Message}");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw new CliException($"GET {http.BaseAddress}admin/cluster answered {(int)response.StatusCode} {response.ReasonPhrase} (is --admin a silo's or the all-in-one's HTTP address?)");
            }
            var text = await response.Content.ReadAsStringAsync(ct);
            if (json)
            {
                console.Profile.Out.Writer.WriteLine(text);
                return 0;
            }
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            var view = root.GetProperty("view");
            console.MarkupLineInterpolated($"[bold]placement view[/] epoch {view.GetProperty("epoch").GetInt64()}, R = {Int(view, "replicas")}, W = {Int(view, "writeQuorum")} (asked node {root.GetProperty("node").GetString()})");
            var nodes = new Table().AddColumns("node", "state", "zone", "weight", "byte endpoint", "silo endpoint", "down since");
            foreach (var n in view.GetProperty("nodes").EnumerateArray())
            {
                nodes.AddRow(
                    Markup.Escape(Str(n, "nodeId")),
                    Markup.Escape(State(n.GetProperty("state"))),
                    Markup.Escape(Str(n, "zone")),
                    n.GetProperty("weight").GetDouble().ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(Str(n, "byteEndpoint")),
                    Markup.Escape(Str(n, "siloEndpoint")),
                    Markup.Escape(Str(n, "downSince")));
            }
            console.Write(nodes);
            console.MarkupLine("[bold]membership[/] (Orleans: who answers now)");
            var members = new Table().AddColumns("silo", "endpoint", "status", "name");
            foreach (var m in root.GetProperty("members").EnumerateArray())
            {
                members.AddRow(Markup.Escape(Str(m, "address")), Markup.Escape(Str(m, "endpoint")), Markup.Escape(Str(m, "status")), Markup.Escape(Str(m, "name")));
            }
            console.Write(members);
            return 0;
        }
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : "";

    private static int Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.GetInt32() : 1;

    private static string State(JsonElement state) =>
        state.ValueKind == JsonValueKind.Number && state.GetInt32() is var i && i >= 0 && i < States.Length ? States[i] : state.ToString();
}
