using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Wharf.Membership.Security;

namespace Wharf.Tests.Membership;

/// <summary>The cluster handshake on in-memory pipes: both sides of a real exchange, byte for byte.</summary>
public sealed class ClusterHandshakeTests
{
    private const string Secret = "unit-cluster-secret-0123456789abcdefghijklmnop";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static (IDuplexPipe Left, IDuplexPipe Right) Connected()
    {
        var (a, b) = (new Pipe(), new Pipe());
        return (new Duplex(a.Reader, b.Writer), new Duplex(b.Reader, a.Writer));
    }

    private static byte[] Key(string secret) => typeof(ClusterSecret).GetProperty("Key", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
        .GetValue(new ClusterSecret(secret)) as byte[] ?? throw new InvalidOperationException();

    [Fact]
    public async Task Two_members_accept_each_other_and_what_follows_the_handshake_reaches_the_next_reader()
    {
        var (left, right) = Connected();
        var results = await Task.WhenAll(
            ClusterHandshake.RunAsync(left, Key(Secret), outbound: true, Ct),
            ClusterHandshake.RunAsync(right, Key(Secret), outbound: false, Ct));
        Assert.Equal([null, null], results);
        await left.Output.WriteAsync(Encoding.ASCII.GetBytes("orleans preamble"), Ct);
        var read = await right.Input.ReadAtLeastAsync(16, Ct);
        Assert.Equal("orleans preamble", Encoding.ASCII.GetString(read.Buffer.Slice(0, 16).ToArray()));
    }

    [Fact]
    public async Task Different_secrets_refuse_each_other_on_both_sides()
    {
        var (left, right) = Connected();
        var results = await Task.WhenAll(
            ClusterHandshake.RunAsync(left, Key(Secret), outbound: true, Ct),
            ClusterHandshake.RunAsync(right, Key(Secret.Replace('0', '1')), outbound: false, Ct));
        Assert.All(results, r => Assert.Equal("the peer does not hold the cluster secret", r));
    }

    [Fact]
    public async Task Two_peers_in_the_same_role_refuse_each_other_so_a_reflected_proof_is_worthless()
    {
        var (left, right) = Connected();
        var results = await Task.WhenAll(
            ClusterHandshake.RunAsync(left, Key(Secret), outbound: true, Ct),
            ClusterHandshake.RunAsync(right, Key(Secret), outbound: true, Ct));
        Assert.All(results, Assert.NotNull);
    }

    [Fact]
    public async Task A_peer_that_speaks_something_else_or_closes_is_refused_and_a_silent_one_times_out()
    {
        var (left, right) = Connected();
        var handshake = ClusterHandshake.RunAsync(left, Key(Secret), outbound: false, Ct);
        await right.Output.WriteAsync(new byte[64], Ct);
        Assert.Equal("the peer does not speak the cluster handshake", await handshake);

        (left, right) = Connected();
        handshake = ClusterHandshake.RunAsync(left, Key(Secret), outbound: false, Ct);
        await right.Output.CompleteAsync();
        Assert.NotNull(await handshake);

        (left, _) = Connected();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ClusterHandshake.RunAsync(left, Key(Secret), outbound: false, timeout.Token));
    }

    [Fact]
    public void A_short_secret_is_refused_and_matching_compares_whole_values()
    {
        Assert.Throws<ArgumentException>(() => new ClusterSecret("too-short"));
        var secret = new ClusterSecret(Secret);
        Assert.True(secret.Matches(Secret));
        Assert.False(secret.Matches(Secret + "x"));
        Assert.False(secret.Matches(Secret[..^1]));
        Assert.False(secret.Matches(null));
    }

    private sealed record Duplex(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
