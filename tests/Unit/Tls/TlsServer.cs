using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Gateway.Tls;

namespace Wharf.Tests.Unit.Tls;

/// <summary>Real Kestrel on 127.0.0.1 (a free port) with HTTPS configured by <see cref="GatewayTls"/>, answering the request's protocol.</summary>
internal sealed class TlsServer : IAsyncDisposable
{
    private readonly WebApplication app;

    private TlsServer(WebApplication app, int port)
    {
        this.app = app;
        Port = port;
    }

    public int Port { get; }

    public static async Task<TlsServer> StartAsync(TlsOptions options, string? developmentPath, CancellationToken ct)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls", "https://127.0.0.1:0"] });
        builder.Logging.ClearProviders();
        var problem = GatewayTls.Configure(builder, options, developmentPath, NullLogger.Instance);
        Assert.Null(problem);
        var app = builder.Build();
        app.MapGet("/", (HttpContext c) => c.Request.Protocol);
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new TlsServer(app, new Uri(address).Port);
    }

    /// <summary>
    /// A TLS handshake as a client that trusts only <paramref name="ca"/> and asks for <paramref name="targetHost"/>:
    /// the stream on success; an exception when the server refuses or the certificate does not validate.
    /// </summary>
    public async Task<SslStream> HandshakeAsync(X509Certificate2 ca, string targetHost, SslProtocols protocols = SslProtocols.None, List<SslApplicationProtocol>? alpn = null)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Port, TestContext.Current.CancellationToken);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(ca);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                EnabledSslProtocols = protocols,
                ApplicationProtocols = alpn,
                CertificateChainPolicy = policy,
                // With CertificateChainPolicy the chain is built against the CA alone; any error (chain or name) refuses.
                RemoteCertificateValidationCallback = (_, _, _, errors) => errors == SslPolicyErrors.None,
            }, TestContext.Current.CancellationToken);
        }
        catch
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
            throw;
        }
        return ssl;
    }

    /// <summary>An HttpClient that trusts only <paramref name="ca"/>.</summary>
    public HttpClient Client(X509Certificate2 ca, string host = "127.0.0.1")
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                    {
                        return false;
                    }
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    return chain.Build(new X509Certificate2(certificate));
                },
            },
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"https://{host}:{Port}/") };
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
