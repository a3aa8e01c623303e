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
                if (Finished)
                {
                    // Nothing lives in this log any more: drop it rather than leave a step-down marker behind. An
                    // activation that only recovered (a late call to a finished upload, a status request for an id
                    // nobody started) otherwise leaves its promise and a marker on every owner for good.
                    await leader.ForgetAsync(cancellationToken);
                }
                else if (await BeforeQuiesceAsync(cancellationToken))
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
    /// Whether this log is over for good and its name is never used again (an upload whose record is gone): a clean
    /// deactivation then forgets the log on its owners instead of stepping down with a marker. Never true for a log
    /// whose name comes back (a repository): a forgotten log's marker keeps anti-entropy from copying it back.
    /// </summary>
    protected virtual bool Finished => false;

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
            await CurrentLeaderAsync();
            try
            {
                await Leader.EnsureReadableAsync();
            }
            catch (LogUnavailableException) when (Leader.StaleView)
            {
                await SucceedAsync();
                await Leader.EnsureReadableAsync();
            }
        }
        catch (LogUnavailableException)
        {
            DeactivateOnIdle();
            throw;
        }
    }

    private Task? _succession;
    private long _checkedEpoch;

    /// <summary>
    /// When the log's owners moved since this activation's leader was made (docs/architecture.md "View changes"), a
    /// new leader from the current view takes over before the next read or write, so clients see no error.
    /// </summary>
    private async Task CurrentLeaderAsync()
    {
        if (_succession is { IsCompleted: false } running)
        {
            await running;
            return;
        }
        if (_checkedEpoch == logs.CurrentEpoch || _leader is null)
        {
            return;
        }
        if (!logs.IsOutdated(_leader))
        {
            _checkedEpoch = logs.CurrentEpoch;
            return;
        }
        await SucceedAsync();
    }

    /// <summary>Replaces the leader by one made from the current view (read again first); throws when that failed.</summary>
    private async Task SucceedAsync()
    {
        if (_succession is { IsCompleted: false } running)
        {
            await running;
            return;
        }
        var succession = SucceedCoreAsync();
        _succession = succession;
        await succession;
    }

    private async Task SucceedCoreAsync()
    {
        try
        {
            if (_leader is { StaleView: true })
            {
                await logs.RefreshViewAsync(CancellationToken.None);
            }
            var epoch = logs.CurrentEpoch;
            if (!logs.OwnedHere(LogId))
            {
                DeactivateOnIdle();
                throw new GrainMovedException($"log {LogId}: this node no longer owns it (view epoch {epoch}); the next activation is placed on an owner");
            }
            var next = logs.Lead(LogId, succeeding: true);
            await next.RecoverAsync(CancellationToken.None);
            _leader = next;
            _checkedEpoch = epoch;
        }
        catch (Exception e) when (e is LogUnavailableException or ArgumentException)
        {
            DeactivateOnIdle();
            throw new LogUnavailableException($"log {LogId}: its owners moved and a new leader could not take over: {e.Message}");
        }
    }

    /// <summary>Drops the log on its owners (a finished upload) and deactivates.</summary>
    protected async Task ForgetAsync()
    {
        await Leader.ForgetAsync();
        _forgotten = true;
        DeactivateOnIdle();
    }

    protected Task AppendAsync(RecordBatch batch) => AppendAsync(batch, notifyCommit: true);

    /// <param name="notifyCommit">False only right before <see cref="ForgetAsync"/>, which carries the commit itself.</param>
    protected async Task AppendAsync(RecordBatch batch, bool notifyCommit)
    {
        try
        {
            await CurrentLeaderAsync();
            try
            {
                await Leader.AppendAsync(batch, notifyCommit);
            }
            catch (LogUnavailableException) when (Leader.StaleView)
            {
                // The batch may or may not have been committed by the old leader; the new one's recovery decided it.
                // Every batch states whole values (puts and deletes of keys), so applying it again leaves the same records.
                await SucceedAsync();
                await Leader.AppendAsync(batch, notifyCommit);
            }
        }
        catch (LogUnavailableException)
        {
            DeactivateOnIdle();
            throw;
        }
    }
}
