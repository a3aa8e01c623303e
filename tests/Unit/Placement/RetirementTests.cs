using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Contracts.Placement;
using Wharf.Membership.Topology;
using Wharf.Silo;

namespace Wharf.Tests.Unit.Placement;

/// <summary>
/// A drained node stays retired: the marker in its data folder, the start decision it leads to, and that only a node
/// removed by its own drain (not one forgotten) is retired.
/// </summary>
public class RetirementTests
{
    [Theory]
    [InlineData(false, true, false, NodeStart.Join)]
    [InlineData(false, false, true, NodeStart.Join)]
    [InlineData(true, true, false, NodeStart.Exit)]
    [InlineData(true, false, false, NodeStart.Idle)]
    [InlineData(true, true, true, NodeStart.Rejoin)]
    [InlineData(true, false, true, NodeStart.Rejoin)]
    public void A_marked_node_joins_only_when_told_to_rejoin(bool marked, bool exitWhenRemoved, bool rejoin, NodeStart expected)
    {
        var marker = marked ? new RetiredMarker("n1", 7, DateTimeOffset.UnixEpoch) : null;
        Assert.Equal(expected, NodeRetirement.StartOf(marker, new NodeOptions { ExitWhenRemoved = exitWhenRemoved, Rejoin = rejoin }));
    }

    [Fact]
    public void The_marker_is_written_beside_the_node_id_read_back_and_deleted()
    {
        var dir = Directory.CreateTempSubdirectory("wharf-retired-").FullName;
        try
        {
            Assert.Null(RetiredMarker.Read(dir));
            var retirement = new NodeRetirement(dir, "n1", NullLogger<NodeRetirement>.Instance);
            retirement.Retire(new PlacementView(42, [new PlacementNode("n1", NodeState.Removed, "", 1, "http://n1:1")], 2, 2));

            var read = RetiredMarker.Read(dir);
            Assert.NotNull(read);
            Assert.Equal("n1", read.NodeId);
            Assert.Equal(42, read.Epoch);
            Assert.Equal(read, retirement.Marker);
            Assert.Equal(Path.Combine(dir, "retired"), Assert.Single(Directory.GetFiles(dir)));

            RetiredMarker.Delete(dir);
            Assert.Null(RetiredMarker.Read(dir));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_marker_that_cannot_be_parsed_still_marks_the_node_retired()
    {
        var dir = Directory.CreateTempSubdirectory("wharf-retired-").FullName;
        try
        {
            File.WriteAllText(RetiredMarker.PathIn(dir), "");
            Assert.Equal(NodeStart.Idle, NodeRetirement.StartOf(RetiredMarker.Read(dir), new NodeOptions { ExitWhenRemoved = false }));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Forget removes a node without a drain: it is not retired, and it does not stop on its own.</summary>
    [Fact(Timeout = 30000)]
    public async Task A_node_removed_without_having_drained_is_not_retired()
    {
        var ct = TestContext.Current.CancellationToken;
        var store = new LocalCasStore();
        var views = new PlacementViewStore(store, "unit");
        await views.UpdateAsync(_ => new PlacementView(1, [new PlacementNode("a", NodeState.Active, "", 1, "http://a:1"), new PlacementNode("c", NodeState.Active, "", 1, "http://c:1")], 1, 1), ct);
        var retired = 0;
        var coordinator = new PlacementCoordinator(
            store, views, new TopologyFeed(views, NullLogger<TopologyFeed>.Instance), new TransitionReports(store, "unit"), new MembershipBackendHealth(), "unit", "c",
            new CoordinatorSettings(TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(15)), NullLogger<PlacementCoordinator>.Instance, retire: _ => retired++);
        await coordinator.TickAsync(ct);
        await views.UpdateAsync(v => v with { Nodes = [.. v.Nodes.Select(n => n.NodeId == "c" ? n with { State = NodeState.Removed } : n)] }, ct);
        await coordinator.TickAsync(ct);
        await coordinator.TickAsync(ct);
        Assert.Equal(0, retired);
    }
}
