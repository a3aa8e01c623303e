namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>
/// The previous landed version of Wharf, built from this repository's history into a temporary folder (once per
/// machine: later runs reuse it), so a test can run it beside this build (DESIGN principle 11).
/// </summary>
public static class PreviousVersion
{
    /// <summary>The commit that landed before this session's work (CI stop 18). Move it forward when a version lands.</summary>
    public const string Commit = "bc97c1d1e3ffa1bae52c611d02d5aa3c9b74544e";

    private static readonly SemaphoreSlim Building = new(1, 1);

    /// <summary>The previous version's <c>Wharf.Silo.dll</c>, built with <c>git archive</c> + <c>dotnet build</c> if not yet.</summary>
    public static async Task<string> SiloAssemblyAsync(CancellationToken ct)
    {
        var dir = Path.Combine(Path.GetTempPath(), "wharf-previous-" + Commit[..12]);
        var dll = Path.Combine(dir, "src", "Silo", "bin", "Release", "net10.0", "Wharf.Silo.dll");
        await Building.WaitAsync(ct);
        try
        {
            if (File.Exists(dll))
            {
                return dll;
            }
            var root = RegistryProcess.RepositoryRoot;
            var present = await ExternalProcess.RunAsync("git", ["-C", root, "cat-file", "-e", Commit + "^{commit}"], timeout: TimeSpan.FromSeconds(30), cancellationToken: ct);
            if (!present.Succeeded)
            {
                // A shallow clone or an exported tree has no history to build the previous version from.
                Assert.Skip($"this checkout lacks commit {Commit[..12]} (a shallow clone?): the previous version cannot be built");
            }
            // Built under a staging name and renamed at the end: a run cut short never leaves a half build behind.
            var staging = $"{dir}.staging-{Guid.NewGuid():N}";
            Directory.CreateDirectory(staging);
            try
            {
                (await ExternalProcess.RunAsync("bash", ["-c", $"git -C '{root}' archive {Commit} | tar -x -C '{staging}'"], timeout: TimeSpan.FromMinutes(2), cancellationToken: ct)).EnsureSuccess();
                (await ExternalProcess.RunAsync("dotnet", ["build", Path.Combine(staging, "src", "Silo", "Silo.csproj"), "-c", "Release", "-nologo", "-v", "q", "-nodeReuse:false", "--disable-build-servers"],
                    new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" }, TimeSpan.FromMinutes(8), ct)).EnsureSuccess();
                Directory.Move(staging, dir);
            }
            finally
            {
                if (Directory.Exists(staging))
                {
                    Directory.Delete(staging, recursive: true);
                }
            }
            return dll;
        }
        finally
        {
            Building.Release();
        }
    }
}
