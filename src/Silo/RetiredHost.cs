namespace Wharf.Silo;

/// <summary>
/// A retired node kept running (<c>Wharf:Node:ExitWhenRemoved=false</c>, the Kubernetes StatefulSet's setting): no
/// Orleans, no store, no byte service, no lease, no view change; only <c>/healthz</c> (200, so the kubelet does not
/// restart it) and <c>/readyz</c> (503, saying why) on the silo's HTTP address, until SIGTERM ends it with 0.
/// </summary>
public static class RetiredHost
{
    public static WebApplication Build(string[] args, WharfOptions options, RetiredMarker marker)
    {
        var builder = WebApplication.CreateBuilder(Wharf.Gateway.Hosting.WharfHost.Options(args));
        if (!options.IsAllInOne && builder.Configuration["urls"] is null && builder.Configuration["ASPNETCORE_URLS"] is null)
        {
            builder.WebHost.UseUrls("http://127.0.0.1:5100"); // the silo's own default (SiloHost)
        }
        var app = builder.Build();
        var why = $"node {marker.NodeId} was drained and Removed at placement view epoch {marker.Epoch} ({marker.At:O}): it owns and serves nothing";
        const string Back = "delete the pod (scale the StatefulSet down), or start it with Wharf:Node:Rejoin=true to bring it back as a new node";
        app.MapGet("/healthz", () => Results.Text("retired"));
        app.MapGet("/readyz", () => Results.Json(
            new { status = "retired", checks = new { view = why }, rejoin = Back },
            statusCode: StatusCodes.Status503ServiceUnavailable));
        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation(
            "{Why}; retired and idle ({Path}): /healthz answers 200 and /readyz 503 until the process is stopped; {Back}",
            why, RetiredMarker.PathIn(Path.GetFullPath(options.DataPath)), Back));
        return app;
    }

    /// <summary>Runs the idle host until SIGTERM (exit 0).</summary>
    public static async Task<int> RunAsync(string[] args, WharfOptions options, RetiredMarker marker)
    {
        await Build(args, options, marker).RunAsync(); // disposes the host when it ends
        return 0;
    }
}
