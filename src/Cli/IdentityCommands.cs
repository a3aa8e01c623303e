using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wharf.Cli;

/// <summary>
/// <c>wharf users|robots|teams|policies</c>: the gateway's admin API for the stored access state (docs/security.md
/// "Admin API"), as an administrator (<c>--user</c> / env <c>WHARF_USER</c>, password from env <c>WHARF_PASSWORD</c>).
/// Lists print one line per entry; a change prints one line; a refusal is the server's message on stderr, exit 1.
/// </summary>
public static class IdentityCommands
{
    public static Command[] Build(Func<ParseResult, HttpClient> client, Option<string?> user, TextWriter output, TextWriter errors)
    {
        var name = new Argument<string>("name") { Description = "The name" };
        var password = new Option<string?>("--password")
        {
            Description = "The new user's password; default: env WHARF_NEW_PASSWORD (keeps it out of the process list)",
        };
        var expiresIn = new Option<long?>("--expires-in") { Description = "Seconds until the robot expires; default: never" };
        var description = new Option<string?>("--description") { Description = "What the robot is for" };
        var members = new Option<string[]>("--member") { Description = "A member (user or robot$name); repeatable", AllowMultipleArgumentsPerToken = true };
        var subjects = new Option<string[]>("--subject") { Description = "A user, robot$name, team:<name>, anonymous or *; repeatable", AllowMultipleArgumentsPerToken = true };
        var repositories = new Option<string[]>("--repository") { Description = "A repository pattern (team-a/**, library/*); repeatable", AllowMultipleArgumentsPerToken = true };
        var actions = new Option<string[]>("--action") { Description = "pull, push, delete, admin or *; repeatable", AllowMultipleArgumentsPerToken = true };
        var immutable = new Option<bool>("--immutable-tags") { Description = "Existing tags of matching repositories may not be moved to another digest" };

        Command Make(string verb, string help, Func<HttpClient, ParseResult, CancellationToken, Task<string>> run, params Symbol[] symbols)
        {
            var command = new Command(verb, help);
            foreach (var symbol in symbols)
            {
                if (symbol is Argument a)
                {
                    command.Arguments.Add(a);
                }
                else if (symbol is Option o)
                {
                    command.Options.Add(o);
                }
            }
            command.SetAction(async (p, ct) =>
            {
                try
                {
                    using var http = client(p);
                    var who = p.GetValue(user) ?? Environment.GetEnvironmentVariable("WHARF_USER");
                    if (who is not null)
                    {
                        var secret = Environment.GetEnvironmentVariable("WHARF_PASSWORD") ?? "";
                        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{who}:{secret}")));
                    }
                    await output.WriteLineAsync(await run(http, p, ct));
                    return 0;
                }
                catch (CliException e)
                {
                    await errors.WriteLineAsync("wharf: " + e.Message);
                    return 1;
                }
            });
            return command;
        }

        var users = new Command("users", "Users stored in the cluster (admin API)")
        {
            Make("list", "List the stored users", (h, p, t) => ListAsync(h, "users", u => $"{u["name"]}{(u["disabled"]?.GetValue<bool>() == true ? "  (disabled)" : "")}", t)),
            Make("create", "Create a user", (h, p, t) => SendAsync(h, HttpMethod.Post, "users", new JsonObject
            {
                ["name"] = p.GetValue(name),
                ["password"] = p.GetValue(password) ?? Environment.GetEnvironmentVariable("WHARF_NEW_PASSWORD")
                    ?? throw new CliException("give the new user's password with --password or env WHARF_NEW_PASSWORD"),
            }, _ => $"created user {p.GetValue(name)}", t), name, password),
            Make("delete", "Delete a user (its tokens are refused from now on)", (h, p, t) =>
                SendAsync(h, HttpMethod.Delete, $"users/{Uri.EscapeDataString(p.GetValue(name)!)}", null, _ => $"deleted user {p.GetValue(name)}", t), name),
        };
        var robots = new Command("robots", "Robot accounts (robot$name) stored in the cluster (admin API)")
        {
            Make("list", "List the robot accounts", (h, p, t) => ListAsync(h, "robots", r =>
                $"{r["name"]}{(r["valid"]?.GetValue<bool>() == false ? (r["revoked"] is null ? "  (expired)" : "  (revoked)") : "")}{(r["expires"] is { } e ? "  expires " + e : "")}", t)),
            Make("create", "Create a robot account; prints its secret, shown this once", (h, p, t) =>
            {
                var body = new JsonObject { ["name"] = p.GetValue(name), ["description"] = p.GetValue(description) };
                if (p.GetValue(expiresIn) is { } seconds)
                {
                    body["expiresInSeconds"] = seconds;
                }
                return SendAsync(h, HttpMethod.Post, "robots", body, r => $"{r["name"]} {r["secret"]}", t);
            }, name, expiresIn, description),
            Make("revoke", "Revoke a robot account: every gateway refuses it within seconds", (h, p, t) =>
                SendAsync(h, HttpMethod.Post, $"robots/{Uri.EscapeDataString(p.GetValue(name)!)}/revoke", null, r => $"revoked {r["name"]}", t), name),
            Make("delete", "Delete a robot account", (h, p, t) =>
                SendAsync(h, HttpMethod.Delete, $"robots/{Uri.EscapeDataString(p.GetValue(name)!)}", null, _ => $"deleted robot {p.GetValue(name)}", t), name),
        };
        var teams = new Command("teams", "Teams stored in the cluster (admin API)")
        {
            Make("list", "List the teams and their members", (h, p, t) => ListAsync(h, "teams", r => $"{r["name"]}: {string.Join(", ", r["members"]!.AsArray().Select(m => m!.GetValue<string>()))}", t)),
            Make("create", "Create a team", (h, p, t) => SendAsync(h, HttpMethod.Post, "teams", new JsonObject
            {
                ["name"] = p.GetValue(name),
                ["members"] = new JsonArray([.. (p.GetValue(members) ?? []).Select(m => (JsonNode)m)]),
            }, _ => $"created team {p.GetValue(name)}", t), name, members),
            Make("delete", "Delete a team", (h, p, t) =>
                SendAsync(h, HttpMethod.Delete, $"teams/{Uri.EscapeDataString(p.GetValue(name)!)}", null, _ => $"deleted team {p.GetValue(name)}", t), name),
        };
        var policies = new Command("policies", "Policies stored in the cluster (admin API)")
        {
            Make("list", "List the policies", (h, p, t) => ListAsync(h, "policies", r =>
                $"{r["name"]}: {Join(r["subjects"])} may {Join(r["actions"])} on {Join(r["repositories"])}{(r["immutableTags"]?.GetValue<bool>() == true ? "  (immutable tags)" : "")}", t)),
            Make("create", "Create a policy", (h, p, t) => SendAsync(h, HttpMethod.Post, "policies", new JsonObject
            {
                ["name"] = p.GetValue(name),
                ["subjects"] = new JsonArray([.. (p.GetValue(subjects) ?? []).Select(m => (JsonNode)m)]),
                ["repositories"] = new JsonArray([.. (p.GetValue(repositories) ?? []).Select(m => (JsonNode)m)]),
                ["actions"] = new JsonArray([.. (p.GetValue(actions) ?? []).Select(m => (JsonNode)m)]),
                ["immutableTags"] = p.GetValue(immutable),
            }, _ => $"created policy {p.GetValue(name)}", t), name, subjects, repositories, actions, immutable),
            Make("delete", "Delete a policy", (h, p, t) =>
                SendAsync(h, HttpMethod.Delete, $"policies/{Uri.EscapeDataString(p.GetValue(name)!)}", null, _ => $"deleted policy {p.GetValue(name)}", t), name),
        };
        return [users, robots, teams, policies];
    }

    private static string Join(JsonNode? array) => array is JsonArray a && a.Count > 0 ? string.Join(",", a.Select(x => x!.GetValue<string>())) : "-";

    private static async Task<string> ListAsync(HttpClient http, string resource, Func<JsonNode, string> line, CancellationToken ct)
    {
        var body = await SendCoreAsync(http, HttpMethod.Get, resource, null, ct);
        var items = body?.AsArray() ?? [];
        return items.Count == 0 ? $"(no {resource})" : string.Join(Environment.NewLine, items.Select(i => line(i!)));
    }

    private static async Task<string> SendAsync(HttpClient http, HttpMethod method, string path, JsonObject? body, Func<JsonNode, string> done, CancellationToken ct) =>
        done(await SendCoreAsync(http, method, path, body, ct) ?? new JsonObject());

    private static async Task<JsonNode?> SendCoreAsync(HttpClient http, HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(method, "admin/v1/" + path) { Content = body is null ? null : JsonContent.Create(body) };
            response = await http.SendAsync(request, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            throw new CliException($"cannot reach {http.BaseAddress}: {e.Message}");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            JsonNode? parsed = null;
            try
            {
                parsed = text.Length == 0 ? null : JsonNode.Parse(text);
            }
            catch (JsonException)
            {
            }
            if (!response.IsSuccessStatusCode)
            {
                if (parsed is JsonObject error && error["message"] is { } message)
                {
                    throw new CliException($"{message.GetValue<string>()} ({error["error"]?.GetValue<string>()}, {(int)response.StatusCode})");
                }
                throw new CliException($"{method} {http.BaseAddress}admin/v1/{path} answered {(int)response.StatusCode} {response.ReasonPhrase} (is --registry a gateway's address?)");
            }
            return parsed;
        }
    }
}
