using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Wharf.Contracts.Protos;
using Wharf.Membership.Security;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Cluster;

/// <summary>
/// A cluster (2 silos, R = 2, one gateway) sharing a cluster secret: everything a client does through the gateway
/// works, while a process that merely reaches a silo's ports can neither read nor write blobs through the byte
/// service, nor call the admin API, nor open an Orleans connection.
/// </summary>
public sealed class ClusterTrustTests
{
    private const string Secret = "e2e-cluster-secret-0123456789abcdefghijklmnop";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 240_000)]
    public async Task Members_with_the_secret_serve_clients_and_a_process_without_it_gets_nothing()
    {
        await using var cluster = await ClusterProcesses.StartAsync(2, 1, Ct, replicas: 2, clusterSecret: Secret);
        using var gateway = new HttpClient { BaseAddress = cluster.Gateways[0].BaseAddress, Timeout = TimeSpan.FromSeconds(30) };

        // Through the gateway: push, then pull back byte-identical (gateway → silos over gRPC and Orleans, silo → silo records).
        var image = ReplicationTests.RandomImage("e2e/trust/app", "v1");
        await ReplicationTests.PushAsync([gateway], image, chunked: true, turn: 0);
        await RawOci.AssertServedAsync(gateway, image);
        var layer = image.Blobs[1];

        var silo = cluster.Silos[0];
        // The byte service: without the secret or with a wrong one, neither Stat, Read nor WriteBlob does anything.
        foreach (var presented in new[] { null, "not-the-secret-but-long-enough-0123456789abcdef" })
        {
            using var channel = Channel(silo.ByteEndpoint, presented);
            var bytes = new Bytes.BytesClient(channel);
            var stat = await Assert.ThrowsAsync<RpcException>(async () => await bytes.StatAsync(new BlobRef { Digest = layer.Digest }, cancellationToken: Ct));
            Assert.Equal(StatusCode.Unauthenticated, stat.StatusCode);
            var read = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                using var call = bytes.Read(new ReadRequest { Digest = layer.Digest }, cancellationToken: Ct);
                await call.ResponseStream.MoveNext(Ct);
            });
            Assert.Equal(StatusCode.Unauthenticated, read.StatusCode);
            var forged = Encoding.UTF8.GetBytes("forged " + Guid.NewGuid());
            var forgedDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(forged));
            using (var call = bytes.WriteBlob(cancellationToken: Ct))
            {
                try
                {
                    await call.RequestStream.WriteAsync(new WriteRequest { Header = new WriteHeader { Digest = forgedDigest, HasExpectedLength = true, ExpectedLength = forged.Length } }, Ct);
                    await call.RequestStream.WriteAsync(new WriteRequest { Data = ByteString.CopyFrom(forged) }, Ct);
                    await call.RequestStream.CompleteAsync();
                }
                catch (Exception e) when (e is RpcException or InvalidOperationException or IOException)
                {
                    // The silo ended the call before the client finished sending: the answer below says why.
                }
                var write = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseAsync);
                // The silo answers UNAUTHENTICATED at once; a client still sending when that answer lands may see its
                // own stream reset (CANCELLED) instead. Either way nothing is stored: checked with the secret below.
                Assert.Contains(write.StatusCode, new[] { StatusCode.Unauthenticated, StatusCode.Cancelled });
            }

            // With the secret the same calls work: the layer is there, the forged blob never arrived.
            using var member = Channel(silo.ByteEndpoint, Secret);
            var trusted = new Bytes.BytesClient(member);
            Assert.Equal(layer.Bytes.Length, (await trusted.StatAsync(new BlobRef { Digest = layer.Digest }, cancellationToken: Ct)).Size);
            Assert.False((await trusted.StatAsync(new BlobRef { Digest = forgedDigest }, cancellationToken: Ct)).Found);
        }

        // The bulk port (HTTP/1.1 reads and writes): the same, 401 without the secret, nothing stored; with it, the bytes.
        var bulk = new Uri((await cluster.StateAsync(silo, Ct)).View.Find(silo.NodeId)!.BulkEndpoint);
        foreach (var presented in new[] { null, "not-the-secret-but-long-enough-0123456789abcdef" })
        {
            using var outsider = BulkClient(bulk, presented);
            Assert.Equal(HttpStatusCode.Unauthorized, (await outsider.GetAsync($"bytes/v1/blobs/{layer.Digest}?offset=0&length={layer.Bytes.Length}", Ct)).StatusCode);
            var forged = Encoding.UTF8.GetBytes("forged over http " + Guid.NewGuid());
            var forgedDigest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(forged));
            Assert.Equal(HttpStatusCode.Unauthorized, (await outsider.PutAsync($"bytes/v1/blobs/{forgedDigest}", new ByteArrayContent(forged), Ct)).StatusCode);
            using var member = Channel(silo.ByteEndpoint, Secret);
            Assert.False((await new Bytes.BytesClient(member).StatAsync(new BlobRef { Digest = forgedDigest }, cancellationToken: Ct)).Found);
        }
        using (var trusted = BulkClient(bulk, Secret))
        {
            Assert.Equal(layer.Bytes, await trusted.GetByteArrayAsync($"bytes/v1/blobs/{layer.Digest}?offset=0&length={layer.Bytes.Length}", Ct));
            using var missing = await trusted.GetAsync($"bytes/v1/blobs/sha256:{new string('0', 64)}?offset=0&length=1", Ct);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Contains("BLOB_UNKNOWN", await missing.Content.ReadAsStringAsync(Ct));
        }

        // The silo admin API needs the secret; probes do not.
        using (var anonymous = new HttpClient { BaseAddress = silo.BaseAddress, Timeout = TimeSpan.FromSeconds(10) })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("admin/cluster", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("admin/repair", null, Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync($"admin/nodes/{silo.NodeId}/drain", null, Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("healthz", Ct)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("readyz", Ct)).StatusCode);
        }
        Assert.Equal(2, (await cluster.StateAsync(silo, Ct)).View.Nodes.Count);

        // Orleans' gateway port: a peer proving a wrong secret, and one that sends Orleans bytes straight away, are cut off.
        var wrong = new ClusterSecret("not-the-secret-but-long-enough-0123456789abcdef");
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(IPAddress.Loopback, silo.OrleansGatewayPort, Ct);
            var pipe = DuplexPipe(socket.GetStream());
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            Assert.Equal("the peer does not hold the cluster secret", await ClusterHandshake.RunAsync(pipe, WrongKey(wrong), outbound: true, timeout.Token));
            Assert.Equal(0, await ReadToEndAsync(socket.GetStream(), timeout.Token));
        }
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync(IPAddress.Loopback, silo.OrleansGatewayPort, Ct);
            var stream = socket.GetStream();
            await stream.WriteAsync(RandomNumberGenerator.GetBytes(64), Ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            // The silo sends its 37-byte hello (a reset may drop it), then closes: nothing of Orleans is ever spoken.
            Assert.InRange(await ReadToEndAsync(stream, timeout.Token), 0, 37);
        }
        // The cluster still serves.
        await RawOci.AssertServedAsync(gateway, image);
        Assert.Contains("refused an incoming cluster connection", silo.Process.Log);
    }

    private static GrpcChannel Channel(Uri endpoint, string? secret)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(3) };
        return GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions
        {
            HttpHandler = secret is null ? handler : new ClusterSecret(secret).Wrap(handler),
        });
    }

    private static HttpClient BulkClient(Uri endpoint, string? secret)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(3) };
        return new HttpClient(secret is null ? handler : new ClusterSecret(secret).Wrap(handler)) { BaseAddress = endpoint, Timeout = TimeSpan.FromSeconds(10) };
    }

    private static byte[] WrongKey(ClusterSecret secret) =>
        HMACSHA256.HashData(SHA256.HashData(Encoding.UTF8.GetBytes(secret.Value)), "wharf-cluster-handshake-v1"u8.ToArray());

    private static IDuplexPipe DuplexPipe(Stream stream) => new Duplex(PipeReader.Create(stream), PipeWriter.Create(stream));

    private static async Task<int> ReadToEndAsync(Stream stream, CancellationToken ct)
    {
        var total = 0;
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, ct)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // A reset is a close too.
        }
        return total;
    }

    private sealed record Duplex(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
