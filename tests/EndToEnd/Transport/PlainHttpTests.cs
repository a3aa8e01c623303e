using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Transport;

/// <summary>
/// The all-in-one speaks plain HTTP. skopeo, podman and buildah with --tls-verify=false try TLS first and fall back
/// to HTTP, so a TLS ClientHello on the registry port must fail quickly and cleanly, and leave the server serving.
/// </summary>
[Collection(SharedRegistry.Name)]
public sealed class PlainHttpTests(RegistryFixture fixture)
{
    [Fact(Timeout = 60_000)]
    public async Task Tls_client_hello_fails_cleanly_and_the_registry_keeps_serving()
    {
        var ct = TestContext.Current.CancellationToken;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, fixture.Registry.Port, ct);
            var recording = new RecordingStream(tcp.GetStream());
            await using var tls = new SslStream(recording, leaveInnerStreamOpen: true, (_, _, _, _) => true);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(TimeSpan.FromSeconds(15));
            var handshake = tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1" }, limit.Token);
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => handshake);
            Assert.False(limit.IsCancellationRequested, $"the TLS handshake hung instead of failing: {failure}");
            Assert.True(failure is AuthenticationException or IOException, failure.ToString());

            // Whatever came back is either nothing (connection closed) or an HTTP 400, never a hang or a 5xx.
            var answer = System.Text.Encoding.ASCII.GetString(recording.Received.ToArray());
            Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), $"unexpected answer to a ClientHello: {answer}");
        }

        using var response = await fixture.Http.GetAsync("v2/", ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact(Timeout = 60_000)]
    public async Task Skopeo_tries_tls_first_then_falls_back_to_plain_http()
    {
        var source = new OciLayout(fixture.NewFolder("fallback"));
        var image = source.AddImage("v1", [8 << 10]);
        var target = $"docker://{fixture.Registry.Host}/e2e/fallback/app:v1";
        await fixture.Tools.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), target).EnsureSuccessAsync();

        var result = await fixture.Tools.SkopeoAsync("--debug", "inspect", "--raw", "--tls-verify=false", target).EnsureSuccessAsync();

        Assert.Contains($"GET https://{fixture.Registry.Host}/v2/", result.StdErr);
        Assert.Contains($"GET http://{fixture.Registry.Host}/v2/", result.StdErr);
        Assert.Equal(File.ReadAllText(source.BlobPath(image.Manifest.Digest)), result.StdOut.TrimEnd('\n'));
    }

    /// <summary>Passes everything through and keeps a copy of the bytes the server sent.</summary>
    private sealed class RecordingStream(Stream inner) : Stream
    {
        public MemoryStream Received { get; } = new();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => Record(buffer.AsSpan(offset), inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            return Record(buffer.Span, n);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private int Record(Span<byte> buffer, int n)
        {
            Received.Write(buffer[..n]);
            return n;
        }
    }
}
