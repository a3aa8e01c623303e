using System.Net;
using System.Net.Sockets;

namespace Wharf.Silo;

/// <summary>
/// The ports a node picks itself when one is configured as 0 (Orleans' silo and gateway ports, the byte service, the
/// bulk path). They are chosen below the kernel's ephemeral range (32768–60999 by default on Linux): a port handed out
/// by binding to port 0 comes from that range, and between that probe and the real bind (Orleans or Kestrel, moments
/// later) any outgoing connection on the machine may take it ("address already in use"). Below the range only a
/// listener can, and the probe sees listeners. Never the same port twice in one process (hosts started side by side in
/// one process, as the tests do, cannot pick the same one), nor a port the node listens on by configuration (its HTTP
/// URLs are bound after these are picked).
/// </summary>
public sealed class AutomaticPorts
{
    /// <summary>The lowest port picked; 10000–19999 by default, clear of the test tools' 20000–32000.</summary>
    public const int DefaultLow = 10_000;
    public const int DefaultHigh = 20_000;

    private readonly IPAddress _address;
    private readonly int _low;
    private readonly int _high;
    private readonly HashSet<int> _reserved;

    /// <summary>Every port handed out in this process.</summary>
    private static readonly HashSet<int> HandedOut = [];

    public AutomaticPorts(IPAddress address, IEnumerable<int> reserved)
        : this(address, reserved, DefaultLow, Math.Min(DefaultHigh, EphemeralLow()))
    {
    }

    /// <param name="low">The lowest port to pick.</param>
    /// <param name="high">One past the highest; when it is not above <paramref name="low"/>, ports come from the kernel.</param>
    public AutomaticPorts(IPAddress address, IEnumerable<int> reserved, int low, int high)
    {
        _address = address;
        _low = low;
        _high = high;
        _reserved = [.. reserved];
    }

    /// <summary>A port nobody listens on now, not reserved, and not handed out before in this process.</summary>
    public int Next()
    {
        if (_high > _low)
        {
            // Random first, so that nodes started together on one machine do not all probe the same ports in turn.
            var span = _high - _low;
            var start = Random.Shared.Next(span);
            for (var i = 0; i < span; i++)
            {
                var port = _low + (start + i) % span;
                if (!_reserved.Contains(port) && CanListen(port) && TryHandOut(port))
                {
                    return port;
                }
            }
        }
        // Nothing free below the ephemeral range (or no room for one): the kernel's choice, with its race.
        for (var attempt = 0; attempt < 100; attempt++)
        {
            using var l = new TcpListener(_address, 0);
            l.Start();
            var port = ((IPEndPoint)l.LocalEndpoint).Port;
            if (!_reserved.Contains(port) && TryHandOut(port))
            {
                return port;
            }
        }
        throw new InvalidOperationException($"no free port on {_address}");
    }

    private static bool TryHandOut(int port)
    {
        lock (HandedOut)
        {
            return HandedOut.Add(port);
        }
    }

    private bool CanListen(int port)
    {
        try
        {
            using var probe = new TcpListener(_address, port);
            probe.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The first port of the kernel's ephemeral range (Linux' <c>ip_local_port_range</c>; 32768 elsewhere).</summary>
    public static int EphemeralLow()
    {
        try
        {
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
            var first = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0];
            return int.TryParse(first, out var low) && low > 0 ? low : 32_768;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return 32_768;
        }
    }
}
