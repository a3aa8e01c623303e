using Wharf.Gateway.Audit;

namespace Wharf.Tests.Unit.Audit;

/// <summary>Repeated successful pulls become one counted audit event; failures and anything else are not tallied.</summary>
public class PullTallyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 10, 59, 58, TimeSpan.Zero);

    private static AuditEvent Pull(int second, string identity = "alice", string address = "10.0.0.1", string reference = "v1", int status = 200) =>
        new(T0.AddSeconds(second), "manifest.pull", identity, address, status < 400 ? "ok" : "failed", status, "app", reference, "sha256:aa");

    [Fact]
    public void Repeated_pulls_by_one_client_become_one_event_with_their_count_and_last_time()
    {
        var tally = new PullTally();
        foreach (var e in new[] { Pull(0), Pull(0, identity: "carol"), Pull(1), Pull(1, address: "10.0.0.9"), Pull(1) })
        {
            Assert.True(PullTally.Counts(e));
            Assert.True(tally.Add(e, "g1", 100));
        }
        var events = tally.Drain();
        Assert.True(tally.IsEmpty);
        Assert.Empty(tally.Drain());
        Assert.Equal(3, events.Count);
        var alice = events.Single(e => e.Identity == "alice" && e.Address == "10.0.0.1");
        Assert.Equal(3, alice.Count);
        Assert.Equal(T0, alice.Time);
        Assert.Equal(T0.AddSeconds(1), alice.Until);
        Assert.Equal("g1", alice.Gateway);
        Assert.Null(events.Single(e => e.Identity == "carol").Count);
        Assert.Equal(5, events.Sum(e => e.Count ?? 1)); // every pull is still counted
        Assert.Equal(events.OrderBy(e => e.Time).ToList(), events);
    }

    [Fact]
    public void Failures_and_other_actions_are_not_tallied_and_other_references_or_hours_are_kept_apart()
    {
        Assert.False(PullTally.Counts(Pull(0, status: 404)));
        Assert.False(PullTally.Counts(new AuditEvent(T0, "manifest.push", "bob", "10.0.0.2", "ok", 201, "app", "v1", "sha256:aa")));
        var tally = new PullTally();
        foreach (var e in new[] { Pull(0), Pull(0, reference: "v2"), Pull(3) }) // Pull(3) falls in the next hour
        {
            tally.Add(e, "g1", 100);
        }
        var events = tally.Drain();
        Assert.Equal(3, events.Count);
        Assert.All(events, e => Assert.Null(e.Count));
    }

    [Fact]
    public void Past_its_capacity_new_kinds_of_pull_are_refused_but_known_ones_still_count()
    {
        var tally = new PullTally();
        Assert.True(tally.Add(Pull(0), "g1", 2));
        Assert.True(tally.Add(Pull(0, identity: "bob"), "g1", 2));
        Assert.False(tally.Add(Pull(0, identity: "carol"), "g1", 2));
        Assert.True(tally.Add(Pull(1), "g1", 2));
        Assert.Equal(2, tally.Drain().Single(e => e.Identity == "alice").Count);
    }
}
