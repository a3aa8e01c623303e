namespace Wharf.Silo;

/// <summary>
/// The embedded default: one process with a silo, the gateway co-hosted, localhost membership, R = W = 1 and all
/// data under one folder. It is <see cref="SiloHost"/> with <c>Wharf:Role = AllInOne</c>: the same grains, store,
/// placement view and byte router as a cluster member, with the local node's bytes reached in-process.
/// </summary>
public static class AllInOne
{
    public static Task<int> RunAsync(string[] args) => SiloHost.RunAsync(args);

    /// <summary>Builds the host; null (after one clear log line) when the configuration is invalid.</summary>
    public static WebApplication? Build(string[] args, Action<WebApplicationBuilder>? configure = null) =>
        SiloHost.BuildAsync(args, configure, CancellationToken.None).GetAwaiter().GetResult();
}
