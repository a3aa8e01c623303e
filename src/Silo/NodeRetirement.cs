using System.Text.Json;
using Wharf.Contracts.Placement;
using Wharf.Silo.Storage;

namespace Wharf.Silo;

/// <summary>
/// The mark a drained node leaves in its data folder, beside <c>node-id</c>, when it sees itself Removed after it saw
/// itself Draining. Its presence is what counts: a node that finds it at start does not enter the placement view
/// (a restart, e.g. by the kubelet before the StatefulSet is scaled down, must not undo the drain).
/// </summary>
public sealed record RetiredMarker(string NodeId, long Epoch, DateTimeOffset At)
{
    public const string FileName = "retired";

    public static string PathIn(string dataPath) => Path.Combine(dataPath, FileName);

    /// <summary>The marker in <paramref name="dataPath"/>, or null; one that cannot be parsed still marks the node retired.</summary>
    public static RetiredMarker? Read(string dataPath)
    {
        var file = PathIn(dataPath);
        if (!File.Exists(file))
        {
            return null;
        }
        try
        {
            if (JsonSerializer.Deserialize<RetiredMarker>(File.ReadAllText(file)) is { NodeId: not null } marker)
            {
                return marker;
            }
        }
        catch (JsonException)
        {
        }
        return new RetiredMarker("", 0, File.GetLastWriteTimeUtc(file));
    }

    /// <summary>Written whole or not at all (temporary file, fsync, rename, directory fsync): it must survive a crash right after.</summary>
    public void Write(string dataPath)
    {
        var file = PathIn(dataPath);
        var temp = file + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, this);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, file, overwrite: true);
        Durable.SyncDirectory(dataPath);
    }

    public static void Delete(string dataPath)
    {
        File.Delete(PathIn(dataPath));
        Durable.SyncDirectory(dataPath);
    }
}

/// <summary>How a node starts, given its marker and <c>Wharf:Node</c>.</summary>
public enum NodeStart
{
    /// <summary>Not retired: take the lease and enter the view as always.</summary>
    Join,

    /// <summary>Retired, and <c>Wharf:Node:Rejoin</c>: enter the view again like a new node (Joining) and drop the marker.</summary>
    Rejoin,

    /// <summary>Retired, <c>Wharf:Node:ExitWhenRemoved=false</c>: health up, not ready, no lease, no view change, until stopped.</summary>
    Idle,

    /// <summary>Retired, <c>Wharf:Node:ExitWhenRemoved=true</c>: one line and exit 0, touching nothing.</summary>
    Exit,
}

/// <summary>A retired node was asked to start without <c>Wharf:Node:Rejoin</c>: it must not reach the placement view.</summary>
public sealed class NodeRetiredException(RetiredMarker marker, WharfOptions options)
    : Exception($"node {marker.NodeId} is retired: it was drained and Removed at placement view epoch {marker.Epoch} ({marker.At:O}) and does not rejoin; "
        + "start it with Wharf:Node:Rejoin=true to bring it back as a new node")
{
    public RetiredMarker Marker { get; } = marker;

    public WharfOptions Options { get; } = options;
}

/// <summary>
/// A drained node stays retired (docs/operations.md "Scaling, draining, forgetting"): the placement coordinator calls
/// <see cref="Retire"/> when this node sees itself Removed after Draining, before the host stops, and
/// <see cref="StartOf"/> decides at the next start.
/// </summary>
public sealed class NodeRetirement(string dataPath, string nodeId, ILogger<NodeRetirement> logger)
{
    /// <summary>The marker this process wrote, once it did: the host then stops and, if configured, idles retired.</summary>
    public RetiredMarker? Marker { get; private set; }

    public static NodeStart StartOf(RetiredMarker? marker, NodeOptions node) =>
        marker is null ? NodeStart.Join
        : node.Rejoin ? NodeStart.Rejoin
        : node.ExitWhenRemoved ? NodeStart.Exit
        : NodeStart.Idle;

    public void Retire(PlacementView view)
    {
        var marker = new RetiredMarker(nodeId, view.Epoch, DateTimeOffset.UtcNow);
        try
        {
            marker.Write(dataPath);
            Marker = marker;
            logger.LogInformation("node {NodeId} is retired ({Path}): a restart does not rejoin the placement view unless Wharf:Node:Rejoin=true", nodeId, RetiredMarker.PathIn(dataPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogError(e, "node {NodeId} could not write {Path}: a restart would rejoin the placement view as a new node; it exits instead of idling", nodeId, RetiredMarker.PathIn(dataPath));
        }
    }
}
