using System.CommandLine;
using Spectre.Console;

namespace Wharf.Cli;

/// <summary>The operator CLI's commands. <see cref="RunAsync"/> is the whole program; tests call it in-process.</summary>
public static class WharfCli
{
    public static async Task<int> RunAsync(string[] args, IAnsiConsole? console = null, TextWriter? errors = null, CancellationToken ct = default)
    {
        console ??= AnsiConsole.Console;
        errors ??= Console.Error;
        var registry = new Option<string>("--registry", "-r")
        {
            Description = "A gateway's (or the all-in-one's) address; env WHARF_REGISTRY",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("WHARF_REGISTRY") ?? "http://127.0.0.1:5000",
        };
        var admin = new Option<string?>("--admin")
        {
            Description = "A silo's (or the all-in-one's) HTTP address for the admin API; env WHARF_ADMIN, else --registry",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("WHARF_ADMIN"),
        };
        var clusterSecret = new Option<string?>("--cluster-secret")
        {
            Description = "The cluster secret, sent to silos' admin API (Wharf:Cluster:Secret); env WHARF_CLUSTER_SECRET",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("WHARF_CLUSTER_SECRET"),
        };
        var timeout = new Option<int>("--timeout")
        {
            Description = "Seconds to wait for any one request",
            Recursive = true,
            DefaultValueFactory = _ => 300,
        };
        var user = new Option<string?>("--user", "-u")
        {
            Description = "An administrator's name for users/robots/teams/policies (password: env WHARF_PASSWORD); env WHARF_USER",
            Recursive = true,
        };
        var json = new Option<bool>("--json") { Description = "Print the cluster as JSON, for scripts" };
        var repoArg = new Argument<string>("repository") { Description = "A repository name, e.g. team/app" };
        var refArg = new Argument<string>("reference") { Description = "repository:tag or repository@sha256:..." };
        var dirArg = new Argument<string>("folder") { Description = "The backup folder" };
        var urlArg = new Argument<string>("url") { Description = "A health endpoint, e.g. http://127.0.0.1:5100/healthz" };
        var drainArg = new Argument<string>("node-id") { Description = "A node id as wharf status lists it" };
        var forgetArg = new Argument<string>("node-id") { Description = "A node id as wharf status lists it" };
        var replicasOption = new Option<int>("--replicas") { Description = "R: copies of every key", Required = true };
        var quorumOption = new Option<int>("--write-quorum") { Description = "W: owners that hold a write before it is acknowledged (more than R / 2)", Required = true };

        var root = new RootCommand("wharf: operate a Wharf registry (status, nodes, replication, repositories, backup and restore, users, robots, teams, policies)");
        root.Options.Add(registry);
        root.Options.Add(admin);
        root.Options.Add(timeout);
        root.Options.Add(clusterSecret);
        root.Options.Add(user);

        HttpClient Client(ParseResult p, string? address = null)
        {
            var baseAddress = address ?? p.GetValue(registry)!;
            if (!Uri.TryCreate(baseAddress.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
            {
                throw new CliException($"'{baseAddress}' is not an http(s) address");
            }
            var http = new HttpClient { BaseAddress = uri, Timeout = TimeSpan.FromSeconds(p.GetValue(timeout)) };
            if (p.GetValue(clusterSecret) is { Length: > 0 } secret)
            {
                http.DefaultRequestHeaders.TryAddWithoutValidation("wharf-cluster-secret", secret);
            }
            return http;
        }

        var status = new Command("status", "The placement view (nodes, state, zone, weight, endpoints) and Orleans' membership") { json };
        status.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = Client(p, p.GetValue(admin) ?? p.GetValue(registry));
            return await StatusCommand.RunAsync(http, p.GetValue(json), console, token);
        }));

        var repos = new Command("repos", "List every repository");
        repos.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = Client(p);
            foreach (var r in await new RegistryApi(http).CatalogAsync(token))
            {
                console.Profile.Out.Writer.WriteLine(r);
            }
            return 0;
        }));

        var tags = new Command("tags", "List a repository's tags") { repoArg };
        tags.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = Client(p);
            foreach (var t in await new RegistryApi(http).TagsAsync(p.GetValue(repoArg)!, token))
            {
                console.Profile.Out.Writer.WriteLine(t);
            }
            return 0;
        }));

        var rm = new Command("rm", "Delete a tag (repo:tag) or a manifest (repo@digest)") { refArg };
        rm.SetAction((p, token) => Guard(errors, async () =>
        {
            var (repo, reference) = SplitReference(p.GetValue(refArg)!);
            using var http = Client(p);
            await new RegistryApi(http).DeleteManifestAsync(repo, reference, token);
            console.Profile.Out.Writer.WriteLine($"deleted {repo}{(reference.StartsWith("sha256:", StringComparison.Ordinal) ? "@" : ":")}{reference}");
            return 0;
        }));

        var backup = new Command("backup", "Write every repository, tag, manifest, referrer and blob to a folder of OCI image layouts") { dirArg };
        backup.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = Client(p);
            var s = await new BackupWriter(new RegistryApi(http), p.GetValue(dirArg)!, line => console.Profile.Out.Writer.WriteLine(line)).RunAsync(token);
            console.Profile.Out.Writer.WriteLine($"backed up {s.Repositories} repositories, {s.Tags} tags, {s.Manifests} manifests, {s.Blobs} blobs, {s.Bytes} bytes of blobs in {s.Elapsed.TotalSeconds:0.0} s ({s.MegabytesPerSecond:0.0} MB/s)");
            return 0;
        }));

        var restore = new Command("restore", "Push a backup into a Wharf, skipping what it already has") { dirArg };
        restore.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = Client(p);
            var s = await new Restorer(new RegistryApi(http), p.GetValue(dirArg)!, line => console.Profile.Out.Writer.WriteLine(line)).RunAsync(token);
            console.Profile.Out.Writer.WriteLine($"restored {s.Repositories} repositories, {s.Tags} tags, {s.Manifests} manifests, {s.Blobs} blobs, {s.Bytes} bytes of blobs in {s.Elapsed.TotalSeconds:0.0} s ({s.MegabytesPerSecond:0.0} MB/s); {s.Skipped} already present");
            return 0;
        }));

        var probe = new Command("probe", "Exit 0 when the URL answers 2xx (the containers' health check)") { urlArg };
        probe.SetAction((p, token) => Guard(errors, async () =>
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            try
            {
                using var response = await http.GetAsync(p.GetValue(urlArg), token);
                if (!response.IsSuccessStatusCode)
                {
                    throw new CliException($"{p.GetValue(urlArg)} answered {(int)response.StatusCode}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException)
            {
                throw new CliException($"{p.GetValue(urlArg)}: {e.Message}");
            }
            return 0;
        }));

        // The admin API's view edits go to a silo (--admin), like status.
        Command Admin(string name, string description, Func<HttpClient, ParseResult, CancellationToken, Task<string>> run, params Symbol[] symbols)
        {
            var command = new Command(name, description);
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
            command.SetAction((p, token) => Guard(errors, async () =>
            {
                using var http = Client(p, p.GetValue(admin) ?? p.GetValue(registry));
                console.Profile.Out.Writer.WriteLine(await run(http, p, token));
                return 0;
            }));
            return command;
        }
        var node = new Command("node", "Change a node's place in the cluster")
        {
            Admin("drain", "Move a running node's shards to the other nodes, then remove it (once drained it retires: it stops and does not rejoin)",
                (http, p, t) => AdminCommands.DrainAsync(http, p.GetValue(drainArg)!, t), drainArg),
            Admin("forget", "Remove a node that is dead for good now, without waiting for the grace period",
                (http, p, t) => AdminCommands.ForgetAsync(http, p.GetValue(forgetArg)!, t), forgetArg),
        };
        var replication = new Command("replication", "The cluster's R and W")
        {
            Admin("set", "Set R and W for the whole cluster; a new R moves shards to their new owners",
                (http, p, t) => AdminCommands.SetReplicationAsync(http, p.GetValue(replicasOption), p.GetValue(quorumOption), t), replicasOption, quorumOption),
        };

        foreach (var c in new[] { status, repos, tags, rm, backup, restore, probe, node, replication })
        {
            root.Subcommands.Add(c);
        }
        foreach (var c in IdentityCommands.Build(p => Client(p), user, console.Profile.Out.Writer, errors))
        {
            root.Subcommands.Add(c);
        }
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            await errors.WriteLineAsync("wharf: " + parsed.Errors[0].Message + " (see wharf --help)");
            return 2;
        }
        return await parsed.InvokeAsync(cancellationToken: ct);
    }

    /// <summary><c>repo:tag</c> or <c>repo@sha256:...</c> (a host:port prefix is not expected: use --registry).</summary>
    public static (string Repository, string Reference) SplitReference(string value)
    {
        var at = value.IndexOf('@', StringComparison.Ordinal);
        if (at > 0)
        {
            return (value[..at], value[(at + 1)..]);
        }
        var colon = value.LastIndexOf(':');
        if (colon > 0 && !value[(colon + 1)..].Contains('/', StringComparison.Ordinal))
        {
            return (value[..colon], value[(colon + 1)..]);
        }
        throw new CliException($"'{value}' names no tag or digest: use repository:tag or repository@sha256:...");
    }

    private static async Task<int> Guard(TextWriter errors, Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (CliException e)
        {
            await errors.WriteLineAsync("wharf: " + e.Message);
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            await errors.WriteLineAsync("wharf: " + e.Message);
            return 1;
        }
    }
}
