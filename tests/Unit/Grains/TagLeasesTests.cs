using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Wharf.Contracts.Grains;
using Wharf.Silo.Grains;

namespace Wharf.Tests.Unit.Grains;

/// <summary>
/// The grain side of DESIGN principle 7: a change is acknowledged once every live lease was revoked or ran out, and
/// not before a new activation's first lease period is over. On a hand-driven clock, so each bound is exact: a
/// change that should wait is seen still waiting a hundredth of a second before its lease ends and done when it
/// ends, however loaded the machine (a real-time version once saw a 1 s delay take 8.8 s in CI).
/// </summary>
public class TagLeasesTests
{
    private static readonly TimeSpan Hundredth = TimeSpan.FromMilliseconds(10);

    private static TagLeasePolicy Policy(double seconds, TimeProvider time) =>
        new(TimeSpan.FromSeconds(seconds), NullLogger<TagLeasePolicy>.Instance, time);

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

    /// <summary>The change is still waiting (given a moment of real time to finish if it wrongly could).</summary>
    private static async Task StillWaitingAsync(Task change)
    {
        await Task.WhenAny(change, Task.Delay(100, TestContext.Current.CancellationToken));
        Assert.False(change.IsCompleted, "the change was acknowledged while a lease was still live");
    }

    /// <summary>The change waits exactly <paramref name="wait"/> more of the clock: still waiting a hundredth before, done at it.</summary>
    private static async Task WaitsExactlyAsync(Task change, FakeTimeProvider time, TimeSpan wait)
    {
        await StillWaitingAsync(change);
        time.Advance(wait - Hundredth);
        await StillWaitingAsync(change);
        time.Advance(Hundredth);
        await DoneAsync(change);
    }

    /// <summary>The change is done without the clock moving on (bounded in real time only against a hang).</summary>
    private static Task DoneAsync(Task change) => change.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

    /// <summary>Lets a new activation's first lease period pass, so that it does not mask what a test measures.</summary>
    private static async Task<TagLeases> SettledActivationAsync(TagLeasePolicy policy, FakeTimeProvider time)
    {
        var leases = policy.NewActivation();
        var first = leases.RevokeAsync("warm-up");
        time.Advance(policy.Period);
        await DoneAsync(first);
        return leases;
    }

    [Fact(Timeout = 30_000)]
    public async Task A_revocation_waits_the_remaining_lease_of_a_holder_that_does_not_answer_and_no_longer()
    {
        var time = new FakeTimeProvider();
        using var policy = Policy(1, time);
        var leases = await SettledActivationAsync(policy, time);
        var silent = new SilentHolder();
        var answering = new AnsweringHolder();
        leases.Grant(silent);
        leases.Grant(answering);
        time.Advance(TimeSpan.FromMilliseconds(400));

        var change = leases.RevokeAsync("library/app");
        Assert.Equal(1, silent.Calls);
        Assert.Equal(["library/app"], answering.Revoked);
        // 0.6 s of the silent holder's lease were left: the change waits exactly that long.
        await WaitsExactlyAsync(change, time, TimeSpan.FromMilliseconds(600));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_revocation_every_holder_answers_returns_at_once_and_forgets_the_leases()
    {
        var time = new FakeTimeProvider();
        using var policy = Policy(2, time);
        var leases = await SettledActivationAsync(policy, time);
        var a = new AnsweringHolder();
        var b = new AnsweringHolder();
        leases.Grant(a);
        leases.Grant(b);

        // Done with the clock standing still: nobody's lease had to run out.
        await DoneAsync(leases.RevokeAsync("library/app"));
        Assert.Equal(["library/app"], a.Revoked);
        Assert.Equal(["library/app"], b.Revoked);

        // Revoked leases are gone: the next change asks nobody, until someone resolves again.
        await DoneAsync(leases.RevokeAsync("library/app"));
        Assert.Single(a.Revoked);
        leases.Grant(a);
        await DoneAsync(leases.RevokeAsync("library/app"));
        Assert.Equal(2, a.Revoked.Count);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_holder_whose_call_fails_is_waited_out_not_taken_as_revoked()
    {
        var time = new FakeTimeProvider();
        using var policy = Policy(1, time);
        var leases = await SettledActivationAsync(policy, time);
        leases.Grant(new FailingHolder());

        await WaitsExactlyAsync(leases.RevokeAsync("library/app"), time, TimeSpan.FromSeconds(1));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_new_activation_waits_one_lease_period_before_its_first_change()
    {
        var time = new FakeTimeProvider();
        using var policy = Policy(1, time);
        var leases = policy.NewActivation();

        // Leases an earlier activation granted are unknown here: they have run out once one period has passed.
        await WaitsExactlyAsync(leases.RevokeAsync("library/app"), time, TimeSpan.FromSeconds(1));

        // Only the first change waits.
        await DoneAsync(leases.RevokeAsync("library/app"));
    }

    [Fact(Timeout = 30_000)]
    public async Task An_expired_lease_is_not_revoked()
    {
        var time = new FakeTimeProvider();
        using var policy = Policy(0.3, time);
        var leases = await SettledActivationAsync(policy, time);
        var silent = new SilentHolder();
        leases.Grant(silent);
        time.Advance(TimeSpan.FromMilliseconds(450));

        await DoneAsync(leases.RevokeAsync("library/app"));
        Assert.Equal(0, silent.Calls);
    }

    [Fact]
    public void Leases_off_grant_nothing()
    {
        using var policy = Policy(0, TimeProvider.System);
        Assert.Equal(TimeSpan.Zero, policy.NewActivation().Grant(new AnsweringHolder()));
    }
}
