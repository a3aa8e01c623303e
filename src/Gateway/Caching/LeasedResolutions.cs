using System.Collections.Concurrent;
using System.Diagnostics;
using Wharf.Contracts.Grains;

namespace Wharf.Gateway.Caching;

/// <summary>
/// This gateway's cached manifest resolutions (tag or digest → descriptor), each valid under the lease the repository
/// grain granted with it (DESIGN principle 7), and the gateway's one lease observer.
/// <para>
/// Safety rests on three rules. (1) An entry's lease is counted from when the request was SENT, so it ends no later
/// than the grain's own record of it. (2) A revocation bumps the repository's generation and drops its entries; an
/// answer whose request started before a revocation is not cached (it may have been read before the change), though
/// it is still served: its request was concurrent with the change. (3) Entries are never extended by a later grant
/// for another reference: between two grants the grain may have forgotten an expired lease and moved a tag without
/// telling us. So a tag moved and acknowledged is never answered from here afterwards: either this gateway answered
/// the revocation, or its lease had run out first.
/// </para>
/// Entries are refreshed ahead of expiry by the first request in the lease's second half, while the others still hit.
/// </summary>
public sealed class LeasedResolutions : ITagLeaseHolder
{
    /// <summary>Above this many repositories, expired ones are swept out on the next insert.</summary>
    private const int SweepAbove = 10_000;

    private readonly ConcurrentDictionary<string, RepositoryLeases> _repositories = new(StringComparer.Ordinal);
    private readonly Action? _revoked;
    private readonly TimeProvider _time;
    private long _nextSweep;

    public LeasedResolutions(Action? revoked = null, TimeProvider? time = null)
    {
        _revoked = revoked;
        _time = time ?? TimeProvider.System;
        _nextSweep = _time.GetTimestamp();
    }

    /// <summary>A request about to be sent: where its answer may be cached, and the generation it must still find.</summary>
    public readonly record struct Ticket(RepositoryLeases Leases, long Generation, long Sent);

    /// <summary>
    /// The cached resolution, when its lease still runs. <paramref name="refresh"/> is true for the one caller that
    /// should ask the grain now because the lease is in its second half (the answer is still good to serve).
    /// </summary>
    public bool TryGet(string repository, string reference, out ManifestRef manifest, out bool refresh)
    {
        refresh = false;
        manifest = null!;
        if (!_repositories.TryGetValue(repository, out var leases))
        {
            return false;
        }
        var now = _time.GetTimestamp();
        lock (leases)
        {
            if (!leases.Entries.TryGetValue(reference, out var entry) || entry.ValidUntil <= now)
            {
                return false;
            }
            if (now >= entry.RefreshAfter && !entry.Refreshing)
            {
                entry.Refreshing = true;
                refresh = true;
            }
            manifest = entry.Manifest;
            return true;
        }
    }

    /// <summary>Call just before asking the grain; pass the ticket to <see cref="Complete"/> with the answer.</summary>
    public Ticket Begin(string repository)
    {
        var leases = _repositories.GetOrAdd(repository, static _ => new RepositoryLeases());
        lock (leases)
        {
            return new Ticket(leases, leases.Generation, _time.GetTimestamp());
        }
    }

    /// <summary>Caches an answer under its lease, unless a revocation came since the ticket was taken.</summary>
    public void Complete(Ticket ticket, string reference, LeasedManifest answer)
    {
        var leases = ticket.Leases;
        lock (leases)
        {
            if (answer.Manifest is null || answer.Lease <= TimeSpan.Zero || leases.Generation != ticket.Generation)
            {
                leases.Entries.Remove(reference);
                return;
            }
            var length = (long)(answer.Lease.TotalSeconds * _time.TimestampFrequency);
            leases.Entries[reference] = new Entry(answer.Manifest, ticket.Sent + length, ticket.Sent + length / 2);
        }
        SweepIfLarge();
    }

    /// <summary>A refresh that failed: let the next request try again.</summary>
    public void Abandon(string repository, string reference)
    {
        if (_repositories.TryGetValue(repository, out var leases))
        {
            lock (leases)
            {
                if (leases.Entries.TryGetValue(reference, out var entry))
                {
                    entry.Refreshing = false;
                }
            }
        }
    }

    /// <summary>The grain's revocation: forget the repository's answers before the change is acknowledged.</summary>
    public Task Revoke(string repository)
    {
        if (_repositories.TryGetValue(repository, out var leases))
        {
            lock (leases)
            {
                leases.Generation++;
                leases.Entries.Clear();
            }
        }
        _revoked?.Invoke();
        return Task.CompletedTask;
    }

    /// <summary>Drops repositories whose every lease ran out, at most once a second, once there are many.</summary>
    private void SweepIfLarge()
    {
        var now = _time.GetTimestamp();
        var next = Interlocked.Read(ref _nextSweep);
        if (_repositories.Count <= SweepAbove || now < next || Interlocked.CompareExchange(ref _nextSweep, now + _time.TimestampFrequency, next) != next)
        {
            return;
        }
        foreach (var (name, leases) in _repositories)
        {
            lock (leases)
            {
                if (leases.Entries.Values.All(e => e.ValidUntil <= now))
                {
                    // A request holding this object's ticket may still complete into it: harmlessly, as nothing
                    // reads a removed object (a later request gets a fresh one).
                    _repositories.TryRemove(KeyValuePair.Create(name, leases));
                }
            }
        }
    }

    /// <summary>One repository's cached answers and its revocation generation; locked as a whole.</summary>
    public sealed class RepositoryLeases
    {
        internal long Generation;
        internal readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);
    }

    internal sealed class Entry(ManifestRef manifest, long validUntil, long refreshAfter)
    {
        public ManifestRef Manifest { get; } = manifest;
        public long ValidUntil { get; } = validUntil;
        public long RefreshAfter { get; } = refreshAfter;
        public bool Refreshing { get; set; }
    }
}
