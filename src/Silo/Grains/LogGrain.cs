using Wharf.Contracts.Grains;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// A grain that leads one replicated log (DESIGN principle 5): on activation it recovers the log from a quorum of
/// its shard's owners with a fresh ballot; it reads this node's replica while its read lease holds, and appends
/// batches acknowledged by W owners. A leader that was deposed or lost its quorum deactivates, so the next call
/// starts a fresh activation that recovers again.
/// </summary>
public abstract class LogGrain(ReplicatedLogs logs) : Grain
{
    private LogLeader? _leader;
    private bool _forgotten;

    /// <summary><c>r/{repository}</c>, <c>u/{upload id}</c> or <c>c/{catalog shard}</c>: its shard follows from it.</summary>
    protected abstract string LogId { get; }

    protected LogLeader Leader => _leader ?? throw new InvalidOperationException("the log is not recovered yet");

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var leader = logs.Lead(LogId);
        await leader.RecoverAsync(cancellationToken);
        _leader = leader;
    }

    /// <summary>
    /// A clean deactivation (idle, or the silo shutting down) steps the leader down with a marker, so the next
    /// activation need not wait one lease before its first change. <see cref="BeforeQuiesceAsync"/> runs first.
    /// </summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_leader is { Failure: null } leader && !_forgotten)
        {
            try
            {
                if (await BeforeQuiesceAsync(cancellationToken))
                {
                    await leader.QuiesceAsync(cancellationToken);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or LogUnavailableException)
            {
            }
        }
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <summary>
    /// What must be done before the leader steps down (a repository: every tag lease it granted is over); false to
    /// skip the marker, and leave the next leader to wait.
    /// </summary>
    protected virtual Task<bool> BeforeQuiesceAsync(CancellationToken cancellationToken) => Task.FromResult(true);

    /// <summary>Waits until this activation may answer reads from this node's replica.</summary>
    protected async Task ReadableAsync()
    {
        if (_forgotten)
        {
            // A finished log reads as empty until this activation goes.
            return;
        }
        try
        {
            await Leader.EnsureReadableAsync();
        }
        catch (LogUnavailableException)
        {
            DeactivateOnIdle();
            throw;
        }
    }

    /// <summary>Drops the log on its owners (a finished upload) and deactivates.</summary>
    protected async Task ForgetAsync()
    {
        await Leader.ForgetAsync();
        _forgotten = true;
        DeactivateOnIdle();
    }

    protected async Task AppendAsync(RecordBatch batch)
    {
        try
        {
            await Leader.AppendAsync(batch);
        }
        catch (LogUnavailableException)
        {
            DeactivateOnIdle();
            throw;
        }
    }
}
