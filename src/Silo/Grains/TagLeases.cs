using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;

namespace Wharf.Silo.Grains;

/// <summary>
/// The leases one repository grain activation has granted on its manifest resolutions (DESIGN principle 7: cache
/// what is immutable, lease what is not). A gateway that resolved a tag or digest under a lease may answer it from
/// its cache until the lease ends; so a change that alters a resolution is acknowledged only after
/// <see cref="RevokeAsync"/>: every unexpired lease revoked (the holder answered) or run out (a holder that does not
/// answer delays the change by at most its remaining lease), and — for a new activation — after one lease period
/// since activation, because leases granted by an earlier activation are unknown to this one.
/// Kept in memory only; the grain's turns call it, the lock makes it safe to call from anywhere (tests).
/// </summary>
public sealed class TagLeases
{
    private readonly TagLeasePolicy _policy;
    private readonly long _activated;
    private long _inheritedUntil;
    private readonly Lock _lock = new();
    private readonly Dictionary<ITagLeaseHolder, long> _expiries = [];

    internal TagLeases(TagLeasePolicy policy)
    {
        _policy = policy;
        _activated = policy.Time.GetTimestamp();
        _inheritedUntil = _activated + Ticks(policy.Period);
    }

    /// <summary>
    /// How long, from activation, leases granted by earlier activations may still be held: zero for a repository no
    /// leader ever led (nothing was granted), one lease period plus the previous leader's read lease otherwise (a
    /// deposed leader may grant until its read lease ends). Set once, right after the log's recovery.
    /// </summary>
    public void InheritFor(TimeSpan window) => _inheritedUntil = _activated + Ticks(window);

    private TimeProvider Time => _policy.Time;

    /// <summary>
    /// Grants (or extends) <paramref name="holder"/>'s lease; returns its length, zero when leases are off. Call it in
    /// the same turn as the read it covers: a change whose append completes later finds the lease and revokes it.
    /// </summary>
    public TimeSpan Grant(ITagLeaseHolder holder)
    {
        var period = _policy.Period;
        if (period <= TimeSpan.Zero)
        {
            return TimeSpan.Zero;
        }
        var until = Time.GetTimestamp() + Ticks(period);
        lock (_lock)
        {
            _expiries[holder] = until;
        }
        return period;
    }

    /// <summary>How long until every lease this activation granted or inherited has run out.</summary>
    public TimeSpan Outstanding()
    {
        var until = _inheritedUntil;
        lock (_lock)
        {
            foreach (var expiry in _expiries.Values)
            {
                until = Math.Max(until, expiry);
            }
        }
        var rest = Remaining(until);
        return rest > TimeSpan.Zero ? rest : TimeSpan.Zero;
    }

    /// <summary>
    /// Call after a change that alters a resolution was appended and before it is acknowledged: revokes every live
    /// lease in parallel, each awaited at most until that lease ends, and waits out the leases an earlier activation
    /// may have granted. A holder that fails or does not answer is not a confirmation: its lease is waited out.
    /// </summary>
    public Task RevokeAsync(string repository)
    {
        var now = Time.GetTimestamp();
        List<KeyValuePair<ITagLeaseHolder, long>> live;
        lock (_lock)
        {
            live = [];
            List<ITagLeaseHolder>? expired = null;
            foreach (var lease in _expiries)
            {
                if (lease.Value > now)
                {
                    live.Add(lease);
                }
                else
                {
                    (expired ??= []).Add(lease.Key);
                }
            }
            expired?.ForEach(h => _expiries.Remove(h));
        }
        var tasks = new List<Task>(live.Count + 1);
        var inherited = Remaining(_inheritedUntil);
        if (inherited > TimeSpan.Zero)
        {
            tasks.Add(Task.Delay(inherited, Time));
        }
        foreach (var (holder, until) in live)
        {
            tasks.Add(RevokeOneAsync(holder, until, repository));
        }
        return Task.WhenAll(tasks);
    }

    private async Task RevokeOneAsync(ITagLeaseHolder holder, long until, string repository)
    {
        try
        {
            await holder.Revoke(repository).WaitAsync(Remaining(until), Time);
            lock (_lock)
            {
                // Forget the lease unless a grant extended it meanwhile: that grant covers a read this revocation
                // may not have, and a later change must revoke it again.
                if (_expiries.TryGetValue(holder, out var current) && current == until)
                {
                    _expiries.Remove(holder);
                }
            }
            _policy.Revocations.Add(1, new KeyValuePair<string, object?>("outcome", "answered"));
        }
        catch (TimeoutException)
        {
            _policy.Revocations.Add(1, new KeyValuePair<string, object?>("outcome", "expired"));
        }
        catch (Exception e)
        {
            // A failed call says nothing about what the holder still serves: wait the lease out.
            _policy.Logger.LogInformation("lease revocation for {Repository} failed ({Message}); waiting out the lease", repository, e.Message);
            var rest = Remaining(until);
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest, Time);
            }
            _policy.Revocations.Add(1, new KeyValuePair<string, object?>("outcome", "expired"));
        }
    }

    private TimeSpan Remaining(long until)
    {
        var left = until - Time.GetTimestamp();
        return left <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(left / (double)Time.TimestampFrequency);
    }

    private long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Time.TimestampFrequency);
}

/// <summary>
/// What every repository grain's <see cref="TagLeases"/> share: the lease length (<c>Wharf:Gateway:TagLeaseSeconds</c>,
/// the same on every silo: an activation waits out its own period, so a silo with a shorter one would wait too little),
/// the clock, and the revocation counter.
/// </summary>
public sealed class TagLeasePolicy : IDisposable
{
    public const string MeterName = "Wharf.Leases";

    private readonly Meter _meter = new(MeterName);

    public TagLeasePolicy(TimeSpan period, ILogger<TagLeasePolicy> logger, TimeProvider? time = null)
    {
        Period = period;
        Logger = logger;
        Time = time ?? TimeProvider.System;
        Revocations = _meter.CreateCounter<long>(
            "wharf.tag_lease.revocations.sent",
            description: "Tag-lease revocations a repository grain sent before acknowledging a change, by outcome (answered, expired: the holder did not answer and its lease ran out).");
    }

    public TimeSpan Period { get; }

    public TimeProvider Time { get; }

    internal ILogger Logger { get; }

    internal Counter<long> Revocations { get; }

    /// <summary>The leases of a new grain activation; its first change waits one lease period from now.</summary>
    public TagLeases NewActivation() => new(this);

    public void Dispose() => _meter.Dispose();
}
