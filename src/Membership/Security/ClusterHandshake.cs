using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Wharf.Membership.Security;

/// <summary>
/// A mutual challenge–response on every Orleans connection (silo to silo, gateway client to silo) before Orleans'
/// own preamble, built on Orleans' connection hooks (<see cref="SiloConnectionOptions"/>,
/// <see cref="ClientConnectionOptions"/>) the way Orleans' TLS package plugs in. Each side sends a magic and a fresh
/// 32-byte nonce, then HMAC-SHA256(key, role ‖ peer's nonce ‖ own nonce) with a key derived from the
/// <see cref="ClusterSecret"/>, and checks the peer's proof. A peer without the secret is cut off before it can send a
/// message; a recorded handshake cannot be replayed (fresh nonces on both sides). The traffic after it is not
/// encrypted: deploy files keep these ports on a private network (docs/security.md).
/// </summary>
public static class ClusterHandshake
{
    private static readonly byte[] Magic = "WHRF\u0001"u8.ToArray();
    private static readonly byte[] InboundRole = "in"u8.ToArray();
    private static readonly byte[] OutboundRole = "out"u8.ToArray();
    private const int NonceLength = 32;

    /// <summary>How long a peer has to complete the handshake.</summary>
    public static TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public static ISiloBuilder UseClusterHandshake(this ISiloBuilder silo, ClusterSecret secret) =>
        silo.Configure<SiloConnectionOptions>(o =>
        {
            o.ConfigureSiloInboundConnection(b => Use(b, secret, outbound: false));
            o.ConfigureSiloOutboundConnection(b => Use(b, secret, outbound: true));
            o.ConfigureGatewayInboundConnection(b => Use(b, secret, outbound: false));
        });

    public static IClientBuilder UseClusterHandshake(this IClientBuilder client, ClusterSecret secret) =>
        client.Configure<ClientConnectionOptions>(o => o.ConfigureConnection(b => Use(b, secret, outbound: true)));

    private static void Use(IConnectionBuilder builder, ClusterSecret secret, bool outbound)
    {
        var logger = builder.ApplicationServices.GetService<ILoggerFactory>()?.CreateLogger("Wharf.ClusterHandshake");
        builder.Use(next => async connection =>
        {
            using var timeout = new CancellationTokenSource(Timeout);
            string? refusal;
            try
            {
                refusal = await RunAsync(connection.Transport, secret.Key, outbound, timeout.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or InvalidOperationException)
            {
                refusal = timeout.IsCancellationRequested ? "no handshake within " + Timeout.TotalSeconds + " s" : e.Message;
            }
            if (refusal is not null)
            {
                logger?.LogWarning("refused an {Direction} cluster connection with {Remote}: {Reason}",
                    outbound ? "outgoing" : "incoming", connection.RemoteEndPoint, refusal);
                connection.Abort(new ConnectionAbortedException("cluster handshake failed: " + refusal));
                return;
            }
            await next(connection);
        });
    }

    /// <summary>Runs one side of the handshake on a connection's pipes; null when the peer proved the secret, else why not.</summary>
    public static async Task<string?> RunAsync(IDuplexPipe transport, byte[] key, bool outbound, CancellationToken ct)
    {
        var own = RandomNumberGenerator.GetBytes(NonceLength);
        await transport.Output.WriteAsync(Magic.Concat(own).ToArray(), ct);
        var hello = await ReadExactlyAsync(transport.Input, Magic.Length + NonceLength, ct);
        if (hello is null || !hello.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            return "the peer does not speak the cluster handshake";
        }
        var peer = hello[Magic.Length..];
        await transport.Output.WriteAsync(Proof(key, outbound ? OutboundRole : InboundRole, peer, own), ct);
        var proof = await ReadExactlyAsync(transport.Input, 32, ct);
        var expected = Proof(key, outbound ? InboundRole : OutboundRole, own, peer);
        return proof is not null && CryptographicOperations.FixedTimeEquals(proof, expected)
            ? null
            : "the peer does not hold the cluster secret";
    }

    private static byte[] Proof(byte[] key, byte[] role, byte[] first, byte[] second) =>
        HMACSHA256.HashData(key, (byte[])[.. role, .. first, .. second]);

    /// <summary>Reads exactly <paramref name="count"/> bytes and leaves the rest for Orleans; null when the peer closed first.</summary>
    private static async Task<byte[]?> ReadExactlyAsync(PipeReader reader, int count, CancellationToken ct)
    {
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            var buffer = result.Buffer;
            if (buffer.Length >= count)
            {
                var bytes = buffer.Slice(0, count).ToArray();
                reader.AdvanceTo(buffer.GetPosition(count));
                return bytes;
            }
            if (result.IsCompleted || result.IsCanceled)
            {
                reader.AdvanceTo(buffer.End);
                return null;
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}
