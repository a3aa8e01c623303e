using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Grains;
using Wharf.Silo.Grains;

namespace Wharf.Tests.Unit.Grains;

/// <summary>
/// The grain side of DESIGN principle 7 on real time: a change is acknowledged once every live lease was revoked or
/// ran out, and not before a new activation's first lease period is over. Lower bounds are exact (a delay never ends
/// early); upper bounds are loose, for a loaded machine.
/// </summary>
public class TagLeasesTests
{
    private static TagLeasePolicy Policy(double seconds) => new(TimeSpan.FromSeconds(seconds), NullLogger<TagLeasePolicy>.Instance);

    /// <summary>Answers every revocation at once and remembers it.</summary>
    private sealed class AnsweringHolder : ITagLeaseHolder
    {
        public List<string> Revoked { get; } = [];

        public Task Revoke(string repository)
        {
            lock (Revoked)
            {
                Revoked.Add(repository);
            }
            return Task.CompletedTask;
        }
    }

    /// <summary>A gateway that is gone or hung: its revocation never answers.</summary>
    private sealed class SilentHolder : ITagLeaseHolder
    {
        public int Calls;

        public Task Revoke(string repository)
        {
            Interlocked.Increment(ref Calls);
            return new TaskCompletionSource().Task;
        }
    }

    /// <summary>A revocation call that fails at once (say, the gateway's connection is refused).</summary>
    private sealed class FailingHolder : ITagLeaseHolder
    {
        public Task Revoke(string repository) => Task.FromException(new InvalidOperationException("unreachable"));
    }

    /// <summary>Lets a new activation's first lease period pass, so that it does not mask what a test measures.</summary>
    private static async Task<TagLeases> SettledActivationAsync(TagLeasePolicy policy)
    {
        var leases = policy.NewActivation();
        await leases.RevokeAsync("warm-up");
        return leases;
    }

    [Fact(Timeout = 30_000)]
    public async Task A_revocation_waits_at_most_the_remaining_lease_of_a_holder_that_does_not_answer()
    {
        using var policy = Policy(1);
        var leases = await SettledActivationAsync(policy);
        var silent = new SilentHolder();
        var answering = new AnsweringHolder();
        var sinceGrant = Stopwatch.StartNew();
        leases.Grant(silent);
        leases.Grant(answering);
        await Task.Delay(400, TestContext.Current.CancellationToken);

        var clock = Stopwatch.StartNew();
        await leases.RevokeAsync("library/app");
        // The rest of the silent holder's 1 s lease was left (about 0.6 s, less on a busy machine): the change waits
        // until that lease has ended, and not much longer.
        Assert.True(sinceGrant.Elapsed.TotalSeconds >= 0.95, $"the change was acknowledged {sinceGrant.Elapsed.TotalSeconds:0.00} s after the grant, inside the 1 s lease");
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.0, 2.5);
        Assert.Equal(1, silent.Calls);
        Assert.Equal(["library/app"], answering.Revoked);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_revocation_every_holder_answers_returns_at_once_and_forgets_the_leases()
    {
        using var policy = Policy(2);
        var leases = await SettledActivationAsync(policy);
        var a = new AnsweringHolder();
        var b = new AnsweringHolder();
        leases.Grant(a);
        leases.Grant(b);

        var clock = Stopwatch.StartNew();
        await leases.RevokeAsync("library/app");
        // Well under the 2 s lease (a holder that did not answer would hold the change that long).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.8), $"took {clock.Elapsed}");
        Assert.Equal(["library/app"], a.Revoked);
        Assert.Equal(["library/app"], b.Revoked);

        // Revoked leases are gone: the next change asks nobody, until someone resolves again.
        await leases.RevokeAsync("library/app");
        Assert.Single(a.Revoked);
        leases.Grant(a);
        await leases.RevokeAsync("library/app");
        Assert.Equal(2, a.Revoked.Count);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_holder_whose_call_fails_is_waited_out_not_taken_as_revoked()
    {
        using var policy = Policy(1);
        var leases = await SettledActivationAsync(policy);
        var clock = Stopwatch.StartNew();
        leases.Grant(new FailingHolder());
        await leases.RevokeAsync("library/app");
        // Waited out (the 1 s lease), and not forever; the upper bound is loose, as a loaded CI machine once took 4.8 s.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.95, 15);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_new_activation_waits_one_lease_period_before_its_first_change()
    {
        using var policy = Policy(1);
        var clock = Stopwatch.StartNew();
        var leases = policy.NewActivation();
        await leases.RevokeAsync("library/app");
        // Leases an earlier activation granted are unknown here: they have run out once one period has passed.
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.99, 3);

        clock.Restart();
        await leases.RevokeAsync("library/app");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(0.9), $"the second change waited {clock.Elapsed}");
    }

    [Fact(Timeout = 30_000)]
    public async Task An_expired_lease_is_not_revoked()
    {
        using var policy = Policy(0.3);
        var leases = await SettledActivationAsync(policy);
        var silent = new SilentHolder();
        leases.Grant(silent);
        await Task.Delay(450, TestContext.Current.CancellationToken);
        var clock = Stopwatch.StartNew();
        await leases.RevokeAsync("library/app");
        Assert.Equal(0, silent.Calls);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Leases_off_grant_nothing()
    {
        using var policy = Policy(0);
        Assert.Equal(TimeSpan.Zero, policy.NewActivation().Grant(new AnsweringHolder()));
    }
}
