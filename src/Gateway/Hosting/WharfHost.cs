using Microsoft.AspNetCore.Builder;

namespace Wharf.Gateway.Hosting;

/// <summary>How every Wharf host (gateway, silo, all-in-one, a retired silo) is built.</summary>
public static class WharfHost
{
    /// <summary>
    /// The builder's options: the content root is the application's own folder, not the working directory.
    /// appsettings.json is read from beside the binaries wherever the process is started, and the configuration
    /// reload watcher (a recursive inotify watch on the content root) watches that folder only. With the working
    /// directory as content root, a node started where its data folder lives (the default <c>./data</c>) had a
    /// watch on every blob folder and handled an event for every file it wrote: 3-4 % of a silo's CPU under a push.
    /// </summary>
    public static WebApplicationOptions Options(string[] args) => new() { Args = args, ContentRootPath = AppContext.BaseDirectory };
}
