using System.Collections.Concurrent;
using System.Diagnostics;
using Wharf.Contracts.Bytes;
using Wharf.Contracts.Placement;

namespace Wharf.Gateway.Bytes;

/// <summary>
/// What this gateway has seen of the byte nodes (DESIGN principle 4: "an owner known to be down"). A node whose call
/// failed as unreachable is avoided for <see cref="AvoidFor"/>, then tried again; the placement view's state counts
/// too (a node the view marks down, removed or joining takes no new bytes). Per gateway and in memory only: it is
/// a hint about where not to wait for a connect timeout, never a decision about who owns data.
/// </summary>
public sealed class NodeHealth(TimeSpan? avoidFor = null)
{
    private readonly ConcurrentDictionary<string, (long Until, int Failures)> _avoidUntil = new(StringComparer.Ordinal);

    /// <summary>How long a node is avoided after its first failure; each failure in a row doubles it, up to 12 times.</summary>
    public TimeSpan AvoidFor { get; } = avoidFor ?? TimeSpan.FromSeconds(5);

    private static readonly TimeSpan MaxAvoid = TimeSpan.FromMinutes(1);

    /// <summary>True while a recent call to the node failed as unreachable.</summary>
    public bool IsAvoided(string nodeId) =>
        _avoidUntil.TryGetValue(nodeId, out var entry) && Stopwatch.GetTimestamp() < entry.Until;

    /// <summary>
    /// Avoids the node: for <see cref="AvoidFor"/> after a first failure, doubling with each failure in a row (a node
    /// that stays dead or paused costs one timeout per minute at most, not one every few seconds).
    /// </summary>
    public void MarkUnreachable(string nodeId) =>
        _avoidUntil.AddOrUpdate(
            nodeId,
            _ => (Until(AvoidFor), 1),
            // Failures while it is already avoided are the same incident (concurrent calls); one after a retry escalates.
            (_, old) => Stopwatch.GetTimestamp() < old.Until
                ? old
                : (Until(TimeSpan.FromTicks(Math.Min(MaxAvoid.Ticks, AvoidFor.Ticks << Math.Min(old.Failures, 12)))), old.Failures + 1));

    private static long Until(TimeSpan span) => Stopwatch.GetTimestamp() + (long)(span.TotalSeconds * Stopwatch.Frequency);

    public void MarkReachable(string nodeId)
    {
        if (!_avoidUntil.IsEmpty)
        {
            _avoidUntil.TryRemove(nodeId, out _);
        }
    }

    /// <summary>Whether new bytes may go to the node now: active in the view and not avoided.</summary>
    public bool TakesWrites(IByteRouter router, string nodeId) =>
        router.StateOf(nodeId) is NodeState.Active && !IsAvoided(nodeId);

    /// <summary>Whether a read should try the node early: not avoided, and not down or removed in the view.</summary>
    public bool ServesReads(IByteRouter router, string nodeId) =>
        !IsAvoided(nodeId) && router.StateOf(nodeId) is not (NodeState.Down or NodeState.Removed);

    /// <summary>
    /// Whether a failure means the node could not be reached (so: avoid it), as opposed to a refusal it answered
    /// (a bad digest, missing bytes) or a client whose body broke. The byte service reports transport failures as
    /// UNAVAILABLE; a cancellation the client did not ask for is a node that stalled (<see cref="StreamFanOut"/>).
    /// </summary>
    public static bool IsUnreachable(Exception e) => e switch
    {
        Contracts.Oci.RegistryException r => r.Code == ErrorCode.Unavailable,
        Grpc.Core.RpcException rpc => rpc.StatusCode is Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded,
        OperationCanceledException => true,
        _ => false,
    };
}
