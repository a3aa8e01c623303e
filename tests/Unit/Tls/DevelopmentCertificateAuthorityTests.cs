using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Wharf.Gateway.Tls;

namespace Wharf.Tests.Unit.Tls;

/// <summary>Development mode's CA and server certificate, served by real Kestrel and checked by a client that trusts only the CA.</summary>
public sealed class DevelopmentCertificateAuthorityTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("wharf-tls-dev-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static X509Certificate2 LoadCertificate(string path) => X509CertificateLoader.LoadCertificateFromFile(path);

    [Fact]
    public void The_CA_is_an_ECDSA_P256_CA_for_ten_years_and_the_server_certificate_chains_to_it_for_every_name()
    {
        var made = DevelopmentCertificateAuthority.Ensure(folder, ["registry.example.test", "10.20.30.40"]);
        Assert.True(made.CaCreated);
        using var ca = LoadCertificate(made.CaCertificatePath);
        using var caKey = ca.GetECDsaPublicKey()!;
        Assert.Equal(256, caKey.KeySize);
        Assert.Equal("1.2.840.10045.3.1.7", caKey.ExportParameters(false).Curve.Oid.Value); // P-256
        Assert.InRange((ca.NotAfter - ca.NotBefore).TotalDays, 3650, 3655);
        Assert.True(ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);

        using var server = LoadCertificate(made.CertificatePath);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        Assert.True(chain.Build(server), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        string[] names = ["localhost", "127.0.0.1", "::1", Environment.MachineName.ToLowerInvariant(), "registry.example.test", "10.20.30.40"];
        Assert.Equal(names, made.Names);
        foreach (var name in names)
        {
            Assert.True(server.MatchesHostname(name, allowWildcards: false), name);
        }
        Assert.False(server.MatchesHostname("other.example.test", allowWildcards: false));
    }

    [Fact]
    public void A_second_start_reuses_both_and_a_new_name_reissues_only_the_server_certificate()
    {
        var first = DevelopmentCertificateAuthority.Ensure(folder, []);
        var ca = File.ReadAllText(first.CaCertificatePath);
        var server = File.ReadAllText(first.CertificatePath);

        var second = DevelopmentCertificateAuthority.Ensure(folder, []);
        Assert.False(second.CaCreated);
        Assert.False(second.ServerIssued);
        Assert.Equal(ca, File.ReadAllText(second.CaCertificatePath));
        Assert.Equal(server, File.ReadAllText(second.CertificatePath));

        var third = DevelopmentCertificateAuthority.Ensure(folder, ["added.example.test"]);
        Assert.False(third.CaCreated);
        Assert.True(third.ServerIssued);
        Assert.Equal(ca, File.ReadAllText(third.CaCertificatePath));
        using var reissued = LoadCertificate(third.CertificatePath);
        Assert.True(reissued.MatchesHostname("added.example.test"));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Key_files_are_readable_by_the_owner_only()
    {
        var made = DevelopmentCertificateAuthority.Ensure(folder, []);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(made.KeyPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(folder, DevelopmentCertificateAuthority.CaKeyFile)));
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Kestrel_serves_the_development_certificate_valid_for_each_name_to_a_client_trusting_only_the_CA()
    {
        await using var server = await TlsServer.StartAsync(new TlsOptions { Mode = "Development", DevelopmentNames = ["registry.example.test"] }, folder, TestContext.Current.CancellationToken);
        using var ca = LoadCertificate(Path.Combine(folder, DevelopmentCertificateAuthority.CaCertificateFile));
        foreach (var name in new[] { "localhost", "127.0.0.1", "::1", Environment.MachineName.ToLowerInvariant(), "registry.example.test" })
        {
            await using var ssl = await server.HandshakeAsync(ca, name);
            Assert.True(ssl.IsAuthenticated, name);
        }
        await Assert.ThrowsAnyAsync<AuthenticationException>(() => server.HandshakeAsync(ca, "not-covered.example.test"));
        using var stranger = CertificateRequestSelfSigned();
        await Assert.ThrowsAnyAsync<AuthenticationException>(() => server.HandshakeAsync(stranger, "localhost"));

        using var client = server.Client(ca);
        Assert.Equal("HTTP/1.1", await client.GetStringAsync("/", TestContext.Current.CancellationToken));
    }

    [Fact(Timeout = 60_000)]
    public async Task TLS_1_2_and_1_3_are_served_and_TLS_1_0_and_1_1_refused()
    {
        await using var server = await TlsServer.StartAsync(new TlsOptions { Mode = "Development" }, folder, TestContext.Current.CancellationToken);
        using var ca = LoadCertificate(Path.Combine(folder, DevelopmentCertificateAuthority.CaCertificateFile));
        await using (var tls12 = await server.HandshakeAsync(ca, "localhost", SslProtocols.Tls12))
        {
            Assert.Equal(SslProtocols.Tls12, tls12.SslProtocol);
        }
        await using (var tls13 = await server.HandshakeAsync(ca, "localhost", SslProtocols.Tls13))
        {
            Assert.Equal(SslProtocols.Tls13, tls13.SslProtocol);
        }
#pragma warning disable SYSLIB0039 // the old protocols are what this test asks for
        foreach (var old in new[] { SslProtocols.Tls, SslProtocols.Tls11 })
#pragma warning restore SYSLIB0039
        {
            var refused = await Assert.ThrowsAnyAsync<Exception>(() => server.HandshakeAsync(ca, "localhost", old));
            Assert.True(refused is AuthenticationException or IOException, refused.ToString());
        }
        // The server side of it, whatever the client library allows: openssl offering TLS 1.1 at security level 0
        // gets the server's protocol_version alert.
        var openssl = await RunOpenSslAsync(server.Port, "-tls1_1");
        Assert.NotEqual(0, openssl.ExitCode);
        Assert.Contains("alert protocol version", openssl.Output);
    }

    [Fact(Timeout = 60_000)]
    public async Task ALPN_negotiates_h2_and_falls_back_to_http_1_1()
    {
        await using var server = await TlsServer.StartAsync(new TlsOptions { Mode = "Development" }, folder, TestContext.Current.CancellationToken);
        using var ca = LoadCertificate(Path.Combine(folder, DevelopmentCertificateAuthority.CaCertificateFile));
        await using (var h2 = await server.HandshakeAsync(ca, "localhost", alpn: [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]))
        {
            Assert.Equal(SslApplicationProtocol.Http2, h2.NegotiatedApplicationProtocol);
        }
        await using (var h1 = await server.HandshakeAsync(ca, "localhost", alpn: [SslApplicationProtocol.Http11]))
        {
            Assert.Equal(SslApplicationProtocol.Http11, h1.NegotiatedApplicationProtocol);
        }
        using var client = server.Client(ca);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/") { Version = new Version(2, 0), VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("HTTP/2", await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    private static X509Certificate2 CertificateRequestSelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=someone else's CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var withKey = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadCertificate(withKey.RawData);
    }

    private static async Task<(int ExitCode, string Output)> RunOpenSslAsync(int port, string protocol)
    {
        var info = new System.Diagnostics.ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "s_client", "-connect", $"127.0.0.1:{port}", protocol, "-cipher", "DEFAULT:@SECLEVEL=0" })
        {
            info.ArgumentList.Add(a);
        }
        using var process = System.Diagnostics.Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(20));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return (process.ExitCode, await output + await error);
    }
}
