using System.Net;
using System.Net.Sockets;
using Wharf.Silo;

namespace Wharf.Tests.Unit.Hosting;

/// <summary>
/// The ports a node picks when one is configured as 0: below the kernel's ephemeral range, where an outgoing
/// connection cannot take one between the pick and the bind (a silo exited with "address already in use" when they
/// came from bind-to-0).
/// </summary>
public class AutomaticPortsTests
{
    [Fact]
    public void Picks_are_below_the_ephemeral_range_distinct_free_and_never_a_configured_port()
    {
        var high = Math.Min(AutomaticPorts.DefaultHigh, AutomaticPorts.EphemeralLow());
        Assert.True(high > AutomaticPorts.DefaultLow, $"this machine's ephemeral range starts at {AutomaticPorts.EphemeralLow()}");
        var configured = Enumerable.Range(AutomaticPorts.DefaultLow, high - AutomaticPorts.DefaultLow).Where(p => p % 2 == 0).ToHashSet();
        var ports = new AutomaticPorts(IPAddress.Loopback, configured);
        var picked = Enumerable.Range(0, 200).Select(_ => ports.Next()).ToList();

        Assert.Equal(picked.Count, picked.Distinct().Count());
        Assert.All(picked, p => Assert.InRange(p, AutomaticPorts.DefaultLow, high - 1));
        Assert.All(picked, p => Assert.DoesNotContain(p, configured));
        // Free when picked: a server can listen on it.
        using var listener = new TcpListener(IPAddress.Loopback, picked[0]);
        listener.Start();
    }

    [Fact]
    public void A_port_someone_listens_on_or_that_is_configured_is_passed_over()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var busy = ((IPEndPoint)occupied.LocalEndpoint).Port;
        // The only two candidates: one listened on, the other configured. The pick must be neither.
        var ports = new AutomaticPorts(IPAddress.Loopback, [busy + 1], busy, busy + 2);

        var picked = ports.Next();

        Assert.NotEqual(busy, picked);
        Assert.NotEqual(busy + 1, picked);
        using var listener = new TcpListener(IPAddress.Loopback, picked);
        listener.Start();
    }
}
