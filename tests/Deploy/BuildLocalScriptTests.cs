using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Wharf.Tests.Deploy;

/// <summary>
/// deploy/docker/build-local.sh (the offline image build, too slow for CI) checks the built images against values it
/// spells out; these must stay the Dockerfile's, or the documented command fails on a correct image (or passes a wrong one).
/// </summary>
public sealed partial class BuildLocalScriptTests
{
    private const string ScriptPath = "deploy/docker/build-local.sh";
    private static readonly string Script = Repo.Read(ScriptPath);
    private static readonly Dockerfile File = Dockerfile.Parse(Repo.Read("deploy/docker/Dockerfile"));

    [Fact(Timeout = 30_000)]
    public async Task Script_is_valid_bash_with_strict_mode()
    {
        Assert.Contains("\nset -euo pipefail\n", Script, StringComparison.Ordinal);
        var info = new ProcessStartInfo("bash", ["-n", Repo.PathOf(ScriptPath)]) { RedirectStandardError = true, UseShellExecute = false };
        using var bash = Process.Start(info)!;
        var errors = await bash.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await bash.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(bash.ExitCode == 0, $"bash -n {ScriptPath}: {errors}");
    }

    [Theory(Timeout = 10_000)]
    [InlineData("silo")]
    [InlineData("gateway")]
    public async Task Script_expects_the_entry_point_ports_environment_and_health_check_the_dockerfile_declares(string target)
    {
        await Task.Yield();
        Assert.Equal(Json(File.Last(target, "ENTRYPOINT")!), Json(Expected(target, "entrypoint")));

        var ports = JsonSerializer.Deserialize<string[]>(Expected(target, "\"exposed ports\""))!.Select(p => int.Parse(p.Replace("/tcp", "", StringComparison.Ordinal)));
        Assert.Equal(DockerfileTests.Exposed(target).Order(), ports.Order());

        var env = JsonSerializer.Deserialize<string[]>(Expected(target, "environment"))!.Order(StringComparer.Ordinal);
        Assert.Equal(File.Env(target).Select(kv => $"{kv.Key}={kv.Value}").Order(StringComparer.Ordinal), env);

        var check = File.Named(target).Instructions.Single(i => i.Keyword == "HEALTHCHECK").Arguments;
        var url = Url().Match(check).Groups[1].Value;
        var expectedCheck = Expected(target, "\"health check\"");
        Assert.Contains($"\\\"{url}\\\"", expectedCheck, StringComparison.Ordinal);
        foreach (var (option, field) in new[] { ("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod") })
        {
            var seconds = Regex.Match(check, $"--{option}=(\\d+)s").Groups[1].Value;
            Assert.Contains($"\\\"{field}\\\":$(({seconds} * S))", expectedCheck, StringComparison.Ordinal);
        }
        Assert.Contains($"\\\"Retries\\\":{Regex.Match(check, "--retries=(\\d+)").Groups[1].Value}", expectedCheck, StringComparison.Ordinal);

        var user = File.Last(target, "USER")!;
        Assert.Contains($"expect \"$target\" user '.config.User' '\"{user}\"'", Script, StringComparison.Ordinal);
        Assert.Contains($"expect \"$target\" \"working dir\" '.config.WorkingDir' '\"{File.Last(target, "WORKDIR")}\"'", Script, StringComparison.Ordinal);
    }

    /// <summary>The last argument of the script's <c>expect TARGET WHAT FILTER EXPECTED</c> line (may span lines).</summary>
    private static string Expected(string target, string what)
    {
        var line = Regex.Match(Script, $@"^expect {target} {Regex.Escape(what)} (?:'[^']*'|""(?:[^""\\]|\\.)*"") (?:'(?<v>[^']*)'|""(?<v>(?:[^""\\]|\\.)*)"")", RegexOptions.Multiline);
        Assert.True(line.Success, $"{ScriptPath} has no 'expect {target} {what}' line");
        return line.Groups["v"].Value;
    }

    private static string Json(string json) => JsonSerializer.Serialize(JsonSerializer.Deserialize<JsonElement>(json));

    [GeneratedRegex("\"(http://[^\"]+)\"")]
    private static partial Regex Url();
}
