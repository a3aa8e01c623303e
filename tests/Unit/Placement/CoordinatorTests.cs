using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;

namespace Wharf.Tests.Unit.Placement;

/// <summary>The coordinator's decisions and the admin API's edits, as pure functions, then one coordinator on a local store.</summary>
public class CoordinatorTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(15);

    private static PlacementNode Node(string id, NodeState state = NodeState.Active, DateTimeOffset? downSince = null) =>
        new(id, state, "", 1, $"http://{id}:1", downSince);

    private static PlacementView View(int replicas, params PlacementNode[] nodes) => new(10, nodes, replicas, replicas / 2 + 1);

    private static CoordinatorInputs Inputs(DateTimeOffset now, IEnumerable<string> live, TransitionProgress? progress = null, IEnumerable<string>? drained = null) =>
        new(now, live.ToHashSet(), Grace, progress, drained?.ToHashSet());

    private static NodeState StateOf(PlacementView view, string id) => view.Find(id)!.State;

    [Fact]
    public void An_active_node_whose_lease_ran_out_is_down_since_now_and_still_owns()
    {
        var view = View(2, Node("a"), Node("b"), Node("c"));
        var next = PlacementCoordinator.Decide(view, Inputs(T0, ["a", "b"]))!;
        Assert.Equal(NodeState.Down, StateOf(next, "c"));
        Assert.Equal(T0, next.Find("c")!.DownSince);
        Assert.False(next.InTransition);
        Assert.False(Transitions.OwnershipDiffers(view, next));
        // Nothing more to do while it stays down within the grace.
        Assert.Null(PlacementCoordinator.Decide(next, Inputs(T0 + Grace - TimeSpan.FromSeconds(1), ["a", "b"])));
    }

    [Fact]
    public void A_down_node_whose_lease_is_live_again_is_active_and_nothing_moves()
    {
        var view = View(2, Node("a"), Node("b"), Node("c", NodeState.Down, T0));
        var next = PlacementCoordinator.Decide(view, Inputs(T0 + TimeSpan.FromMinutes(20), ["a", "b", "c"]))!;
        Assert.Equal(NodeState.Active, StateOf(next, "c"));
        Assert.Null(next.Find("c")!.DownSince);
        Assert.False(next.InTransition);
    }

    [Fact]
    public void Down_past_the_grace_is_removed_and_starts_a_transition_one_node_at_a_time()
    {
        var view = View(2, Node("a"), Node("b"), Node("c", NodeState.Down, T0 + TimeSpan.FromMinutes(1)), Node("d", NodeState.Down, T0));
        var next = PlacementCoordinator.Decide(view, Inputs(T0 + Grace + TimeSpan.FromMinutes(2), ["a", "b"]))!;
        // The one down longest first; the other waits for this transition to end.
        Assert.Equal(NodeState.Removed, StateOf(next, "d"));
        Assert.Equal(NodeState.Down, StateOf(next, "c"));
        Assert.True(next.InTransition);
        Assert.Equal(view.Epoch + 1, next.TransitionEpoch);
        Assert.Equal(view.Nodes, next.Previous);

        // While it is in progress, the second expired node stays Down.
        var written = next with { Epoch = view.Epoch + 1 };
        Assert.Null(PlacementCoordinator.Decide(written, Inputs(T0 + Grace + TimeSpan.FromMinutes(3), ["a", "b"])));
    }

    [Fact]
    public void A_joining_node_is_promoted_only_without_a_down_node_or_a_transition_and_one_at_a_time()
    {
        var withDown = View(2, Node("a"), Node("b"), Node("c", NodeState.Down, T0), Node("j1", NodeState.Joining), Node("j2", NodeState.Joining));
        Assert.Null(PlacementCoordinator.Decide(withDown, Inputs(T0, ["a", "b", "j1", "j2"])));

        var inTransition = View(2, Node("a"), Node("b"), Node("j1", NodeState.Joining)) with { Previous = [Node("a"), Node("b"), Node("x")], TransitionEpoch = 10 };
        Assert.Null(PlacementCoordinator.Decide(inTransition, Inputs(T0, ["a", "b", "j1"])));

        // A Joining node that is not running is not promoted: it could not sync what it gains.
        var calm = View(2, Node("a"), Node("b"), Node("j1", NodeState.Joining), Node("j2", NodeState.Joining));
        Assert.Null(PlacementCoordinator.Decide(calm, Inputs(T0, ["a", "b"])));

        // Nor while an owner missed a lease renewal: it may have died and not be Down yet.
        Assert.Null(PlacementCoordinator.Decide(calm, Inputs(T0, ["a", "b", "j1", "j2"]) with { LateLeases = new HashSet<string> { "b" } }));

        var next = PlacementCoordinator.Decide(calm, Inputs(T0, ["a", "b", "j1", "j2"]))!;
        Assert.Equal(NodeState.Active, StateOf(next, "j1"));
        Assert.Equal(NodeState.Joining, StateOf(next, "j2"));
        Assert.True(next.InTransition);
        Assert.True(Transitions.OwnershipDiffers(calm, next));
    }

    [Fact]
    public void A_transition_ends_only_once_every_gainer_reported_synced_for_this_view()
    {
        var before = View(2, Node("a"), Node("b"), Node("c"), Node("j", NodeState.Joining));
        var view = PlacementCoordinator.StartTransition(before, before.Find("j")! with { State = NodeState.Active }) with { Epoch = 11 };
        var gainers = Transitions.Gainers(view);
        Assert.Equal(["j"], gainers);

        var live = new[] { "a", "b", "c", "j" };
        Assert.Null(PlacementCoordinator.Decide(view, Inputs(T0, live)));
        Assert.Null(PlacementCoordinator.Decide(view, Inputs(T0, live, new TransitionProgress(view.Epoch, gainers, new HashSet<string>()))));
        // Reports read for another view epoch do not count: that view may have had other gainers.
        Assert.Null(PlacementCoordinator.Decide(view, Inputs(T0, live, new TransitionProgress(view.Epoch - 1, gainers, new HashSet<string> { "j" }))));

        var ended = PlacementCoordinator.Decide(view, Inputs(T0, live, new TransitionProgress(view.Epoch, gainers, new HashSet<string> { "j" })))!;
        Assert.False(ended.InTransition);
        Assert.Equal(view.Nodes, ended.Nodes);
    }

    [Fact]
    public void A_gainer_that_goes_down_keeps_the_transition_open_while_it_is_marked_down()
    {
        var before = View(2, Node("a"), Node("b"), Node("j", NodeState.Joining));
        var view = PlacementCoordinator.StartTransition(before, before.Find("j")! with { State = NodeState.Active }) with { Epoch = 11 };
        var progress = new TransitionProgress(view.Epoch, ["j"], new HashSet<string>());
        var next = PlacementCoordinator.Decide(view, Inputs(T0, ["a", "b"], progress))!;
        Assert.Equal(NodeState.Down, StateOf(next, "j"));
        Assert.True(next.InTransition);

        // Past the grace it is removed and the transition starts again from the same previous owners.
        var down = next with { Epoch = 12 };
        var again = PlacementCoordinator.Decide(down, Inputs(T0 + Grace, ["a", "b"], new TransitionProgress(12, ["j"], new HashSet<string>())))!;
        Assert.Equal(NodeState.Removed, StateOf(again, "j"));
        Assert.True(again.InTransition);
        Assert.Equal(before.Nodes, again.Previous);
        Assert.Equal(13, again.TransitionEpoch);
        Assert.Empty(Transitions.Gainers(again with { Epoch = 13 }));
    }

    [Fact]
    public void A_drain_starts_a_transition_and_the_node_is_removed_once_it_ended_and_the_node_reported_drained()
    {
        var view = View(2, Node("a"), Node("b"), Node("c"));
        var edit = ViewEdits.Drain(view, "c");
        Assert.True(edit.Accepted);
        var draining = edit.View! with { Epoch = 11 };
        Assert.Equal(NodeState.Draining, StateOf(draining, "c"));
        Assert.True(draining.InTransition);
        Assert.True(Transitions.OwnershipDiffers(view, draining));

        var live = new[] { "a", "b", "c" };
        // Not before the transition has ended, even if it says drained.
        Assert.Null(PlacementCoordinator.Decide(draining, Inputs(T0, live, drained: ["c"])));
        var ended = PlacementCoordinator.Decide(draining, Inputs(T0, live, new TransitionProgress(11, ["a"], new HashSet<string> { "a" })))! with { Epoch = 12 };
        Assert.False(ended.InTransition);
        // Not before it says drained.
        Assert.Null(PlacementCoordinator.Decide(ended, Inputs(T0, live)));
        var removed = PlacementCoordinator.Decide(ended, Inputs(T0, live, drained: ["c"]))!;
        Assert.Equal(NodeState.Removed, StateOf(removed, "c"));
        Assert.False(removed.InTransition);
        Assert.False(Transitions.OwnershipDiffers(ended, removed));
    }

    [Fact]
    public void A_drain_is_refused_for_an_unknown_node_a_node_not_active_during_a_transition_and_below_R()
    {
        var view = View(2, Node("a"), Node("b"), Node("c"), Node("d", NodeState.Down, T0));
        Assert.Equal((404, ViewEdits.UnknownNode), Refusal(ViewEdits.Drain(view, "zz")));
        Assert.Equal((409, ViewEdits.NodeNotActive), Refusal(ViewEdits.Drain(view, "d")));
        var busy = view with { Previous = view.Nodes, TransitionEpoch = view.Epoch };
        Assert.Equal((409, ViewEdits.TransitionInProgress), Refusal(ViewEdits.Drain(busy, "a")));
        var small = View(3, Node("a"), Node("b"), Node("c"));
        Assert.Equal((409, ViewEdits.TooFewOwners), Refusal(ViewEdits.Drain(small, "a")));
    }

    [Fact]
    public void Forget_removes_a_dead_node_at_once_but_not_a_running_one()
    {
        var view = View(2, Node("a"), Node("b"), Node("c", NodeState.Down, T0), Node("j", NodeState.Joining));
        Assert.Equal((409, ViewEdits.NodeAlive), Refusal(ViewEdits.Forget(view, "a", leaseLive: true)));
        Assert.Equal((404, ViewEdits.UnknownNode), Refusal(ViewEdits.Forget(view, "zz", leaseLive: false)));

        var forgot = ViewEdits.Forget(view, "c", leaseLive: false).View!;
        Assert.Equal(NodeState.Removed, StateOf(forgot, "c"));
        Assert.True(forgot.InTransition);
        Assert.Equal((409, ViewEdits.TransitionInProgress), Refusal(ViewEdits.Forget(forgot with { Epoch = 11 }, "a", leaseLive: false)));
        Assert.Equal((409, ViewEdits.NodeRemoved), Refusal(ViewEdits.Forget(forgot, "c", leaseLive: false)));

        // A Joining node owns nothing: forgetting it moves nothing, so it needs no transition.
        var joining = ViewEdits.Forget(view, "j", leaseLive: false).View!;
        Assert.Equal(NodeState.Removed, StateOf(joining, "j"));
        Assert.False(joining.InTransition);
    }

    [Theory]
    [InlineData(3, 1, 400)]
    [InlineData(2, 1, 400)]
    [InlineData(0, 0, 400)]
    [InlineData(2, 3, 400)]
    [InlineData(4, 3, 409)]
    [InlineData(1, 1, 200)]
    [InlineData(3, 2, 200)]
    [InlineData(3, 3, 200)]
    public void R_and_W_are_validated(int replicas, int writeQuorum, int status)
    {
        var view = View(2, Node("a"), Node("b"), Node("c"));
        Assert.Equal(status, ViewEdits.SetReplication(view, replicas, writeQuorum).Status);
    }

    [Fact]
    public void A_new_R_starts_a_transition_a_new_W_alone_does_not_and_neither_happens_during_one()
    {
        var view = View(2, Node("a"), Node("b"), Node("c"));
        var r3 = ViewEdits.SetReplication(view, 3, 2).View!;
        Assert.Equal((3, 2), (r3.Replicas, r3.WriteQuorum));
        Assert.True(r3.InTransition);
        var w3 = ViewEdits.SetReplication(View(3, Node("a"), Node("b"), Node("c")), 3, 3).View!;
        Assert.Equal(3, w3.WriteQuorum);
        Assert.False(w3.InTransition);
        Assert.Equal((409, ViewEdits.TransitionInProgress), Refusal(ViewEdits.SetReplication(r3, 2, 2)));
        // The same values are no change at all.
        Assert.Same(view, ViewEdits.SetReplication(view, 2, 2).View);
    }

    [Fact]
    public void A_removed_node_that_starts_again_joins_as_joining_and_a_down_one_as_active()
    {
        var view = View(2, Node("a"), Node("b"), Node("c", NodeState.Removed), Node("d", NodeState.Down, T0));
        NodeAnnouncement Self(string id) => new(id, "", 1, $"http://{id}:1", "", BootstrapExpect: 2);
        Assert.Equal(NodeState.Joining, StateOf(NodeRegistration.Join(view, Self("c"))!, "c"));
        var back = NodeRegistration.Join(view, Self("d"))!;
        Assert.Equal(NodeState.Active, StateOf(back, "d"));
        Assert.Null(back.Find("d")!.DownSince);
        Assert.Equal(NodeState.Active, StateOf(NodeRegistration.Reactivate(view, "d")!, "d"));
        Assert.Null(NodeRegistration.Reactivate(view, "a"));
    }

    private static (int, string) Refusal(ViewEdit edit)
    {
        Assert.False(edit.Accepted, edit.Message);
        return (edit.Status, edit.Error);
    }

    /// <summary>Three silos' coordinators on one store, with leases on a clock the test moves.</summary>
    [Fact(Timeout = 60000)]
    public async Task On_a_local_store_only_the_smallest_live_active_node_acts_and_a_drained_node_stops()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = new LocalCasStore();
        var time = new ManualTime(T0);
        const string cluster = "unit";
        var views = new PlacementViewStore(store, cluster);
        var reports = new TransitionReports(store, cluster);
        await views.UpdateAsync(_ => View(2, Node("a"), Node("b"), Node("c")), ct);
        var leases = new Dictionary<string, NodeLease>();
        foreach (var id in new[] { "a", "b", "c" })
        {
            leases[id] = new NodeLease(store, cluster, id, TimeSpan.FromSeconds(15), time);
            await leases[id].AcquireAsync(ct);
        }
        var lifetimes = new Dictionary<string, StopRecorder>();
        var retired = new List<(string Id, NodeState State, bool StoppedBefore)>();
        var coordinators = new[] { "c", "b", "a" }.Select(id =>
        {
            lifetimes[id] = new StopRecorder();
            return (Id: id, Coordinator: new PlacementCoordinator(
                store, views, new TopologyFeed(views, NullLogger<TopologyFeed>.Instance), reports, new MembershipBackendHealth(), cluster, id,
                new CoordinatorSettings(TimeSpan.FromSeconds(1), Grace), NullLogger<PlacementCoordinator>.Instance, lifetimes[id], time,
                retire: v => retired.Add((id, v.Find(id)!.State, lifetimes[id].Stopped))));
        }).ToList();
        async Task TickAllAsync()
        {
            foreach (var (_, c) in coordinators)
            {
                await c.TickAsync(ct);
            }
        }

        await TickAllAsync();
        Assert.Equal(["a"], coordinators.Where(c => c.Coordinator.IsCoordinator).Select(c => c.Id));
        var epoch = (await views.ReadAsync(ct)).Epoch;

        // c stops renewing; a and b renew. After the TTL, c is Down — once.
        time.Now += TimeSpan.FromSeconds(20);
        await leases["a"].AcquireAsync(ct);
        await leases["b"].AcquireAsync(ct);
        await TickAllAsync();
        await TickAllAsync();
        var view = await views.ReadAsync(ct);
        Assert.Equal(NodeState.Down, StateOf(view, "c"));
        Assert.Equal(epoch + 1, view.Epoch);

        // a's lease runs out too: b coordinates and marks a Down.
        time.Now += TimeSpan.FromSeconds(20);
        await leases["b"].AcquireAsync(ct);
        await TickAllAsync();
        Assert.Equal(["b"], coordinators.Where(c => c.Coordinator.IsCoordinator).Select(c => c.Id));
        Assert.Equal(NodeState.Down, StateOf(await views.ReadAsync(ct), "a"));

        // Both come back (their processes resumed and renewed): Active again, and a coordinates again.
        await leases["a"].AcquireAsync(ct);
        await leases["c"].AcquireAsync(ct);
        await TickAllAsync();
        await TickAllAsync();
        view = await views.ReadAsync(ct);
        Assert.All(view.Nodes, n => Assert.Equal(NodeState.Active, n.State));
        Assert.Equal(["a"], coordinators.Where(c => c.Coordinator.IsCoordinator).Select(c => c.Id));

        // Drain c: the transition ends once its gainers report synced; c is removed once it reports drained, and stops.
        await views.UpdateAsync(v => ViewEdits.Drain(v, "c").View, ct);
        await TickAllAsync();
        view = await views.ReadAsync(ct);
        Assert.True(view.InTransition);
        foreach (var gainer in Transitions.Gainers(view))
        {
            await reports.ReportSyncedAsync(view.TransitionEpoch, gainer, ct);
        }
        await TickAllAsync();
        Assert.False((await views.ReadAsync(ct)).InTransition);
        Assert.Equal(NodeState.Draining, StateOf(await views.ReadAsync(ct), "c"));
        await reports.ReportDrainedAsync("c", ct);
        await TickAllAsync();
        await TickAllAsync();
        Assert.Equal(NodeState.Removed, StateOf(await views.ReadAsync(ct), "c"));
        Assert.True(lifetimes["c"].Stopped);
        Assert.False(lifetimes["a"].Stopped || lifetimes["b"].Stopped);
        // c was retired once, on seeing itself Removed, before it stopped; a node Down and back (a, c earlier) never was.
        Assert.Equal([("c", NodeState.Removed, false)], retired);
        await TickAllAsync();
        Assert.Single(retired);
    }

    private sealed class ManualTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private sealed class StopRecorder : IHostApplicationLifetime
    {
        public bool Stopped { get; private set; }

        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => Stopped = true;
    }
}
