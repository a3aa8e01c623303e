using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging.Abstractions;
using Wharf.Gateway.Tls;

namespace Wharf.Tests.Unit.Tls;

/// <summary><c>Wharf:Tls:Certificate</c> / <c>Key</c>: intermediates sent, rotation without restart, unusable settings refused at start.</summary>
public sealed class PemCertificateTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("wharf-tls-pem-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact(Timeout = 60_000)]
    public async Task The_intermediates_in_the_certificate_file_are_sent_so_a_client_trusting_only_the_root_validates()
    {
        using var root = Issue(null, "CN=Test root", isCa: true);
        using var intermediate = Issue(root, "CN=Test intermediate", isCa: true);
        using var leaf = Issue(intermediate, "CN=localhost", isCa: false, "localhost", "127.0.0.1");
        var (certificate, key) = Write("server", leaf, intermediate);

        await using var server = await TlsServer.StartAsync(new TlsOptions { Certificate = certificate, Key = key }, null, TestContext.Current.CancellationToken);
        using var trusted = X509CertificateLoader.LoadCertificate(root.RawData);
        await using var ssl = await server.HandshakeAsync(trusted, "127.0.0.1");
        Assert.Equal(leaf.Thumbprint, new X509Certificate2(ssl.RemoteCertificate!).Thumbprint);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_certificate_replaced_on_disk_is_served_without_a_restart_and_a_broken_pair_keeps_the_old_one()
    {
        using var root = Issue(null, "CN=Test root", isCa: true);
        using var first = Issue(root, "CN=first", isCa: false, "localhost");
        using var second = Issue(root, "CN=second", isCa: false, "localhost");
        var (certificate, key) = Write("server", first);
        await using var server = await TlsServer.StartAsync(new TlsOptions { Certificate = certificate, Key = key }, null, TestContext.Current.CancellationToken);
        using var trusted = X509CertificateLoader.LoadCertificate(root.RawData);
        Assert.Equal("CN=first", await ServedSubjectAsync(server, trusted));

        // Half a rotation (the new certificate, the old key) is not taken.
        File.WriteAllText(certificate, second.ExportCertificatePem());
        await Task.Delay(1500, TestContext.Current.CancellationToken);
        Assert.Equal("CN=first", await ServedSubjectAsync(server, trusted));

        using (var secondKey = second.GetECDsaPrivateKey()!)
        {
            File.WriteAllText(key, secondKey.ExportPkcs8PrivateKeyPem());
        }
        var served = "";
        for (var i = 0; i < 50 && served != "CN=second"; i++)
        {
            await Task.Delay(200, TestContext.Current.CancellationToken);
            served = await ServedSubjectAsync(server, trusted);
        }
        Assert.Equal("CN=second", served);
    }

    [Fact]
    public void Missing_mismatched_or_inconsistent_settings_stop_the_start_with_one_line()
    {
        using var root = Issue(null, "CN=Test root", isCa: true);
        using var a = Issue(root, "CN=a", isCa: false, "localhost");
        using var b = Issue(root, "CN=b", isCa: false, "localhost");
        var (certificate, _) = Write("a", a);
        var (_, otherKey) = Write("b", b);
        var garbage = Path.Combine(folder, "garbage.pem");
        File.WriteAllText(garbage, "not a certificate");

        Assert.Contains("/nonexistent.crt", Problem("https://127.0.0.1:0", new TlsOptions { Certificate = "/nonexistent.crt", Key = "/nonexistent.key" }));
        Assert.Contains(certificate, Problem("https://127.0.0.1:0", new TlsOptions { Certificate = certificate, Key = otherKey }));
        Assert.Contains(garbage, Problem("https://127.0.0.1:0", new TlsOptions { Certificate = garbage, Key = otherKey }));
        Assert.Contains("Wharf:Tls:Key", Problem("https://127.0.0.1:0", new TlsOptions { Certificate = certificate }));
        Assert.Contains("Wharf:Tls:Mode must be", Problem("https://127.0.0.1:0", new TlsOptions { Mode = "Sometimes" }));
        Assert.Contains("https://", Problem("https://127.0.0.1:0", new TlsOptions()));
        Assert.Contains("no listen URL is https://", Problem("http://127.0.0.1:0", new TlsOptions { Mode = "Development", DevelopmentPath = folder }));
        Assert.Contains("Wharf:Tls:DevelopmentPath", Problem("https://127.0.0.1:0", new TlsOptions { Mode = "Development" }));
        Assert.Null(Problem("http://127.0.0.1:0", new TlsOptions()));
        foreach (var p in new[] { Problem("https://127.0.0.1:0", new TlsOptions { Certificate = certificate, Key = otherKey }) })
        {
            Assert.DoesNotContain('\n', p!);
        }
    }

    private static string? Problem(string url, TlsOptions options)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls", url] });
        return GatewayTls.Configure(builder, options, developmentPath: null, NullLogger.Instance);
    }

    private static async Task<string> ServedSubjectAsync(TlsServer server, X509Certificate2 trusted)
    {
        await using var ssl = await server.HandshakeAsync(trusted, "localhost");
        return ssl.RemoteCertificate!.Subject;
    }

    private (string Certificate, string Key) Write(string name, X509Certificate2 leaf, params X509Certificate2[] intermediates)
    {
        var certificate = Path.Combine(folder, name + ".crt");
        var key = Path.Combine(folder, name + ".key");
        File.WriteAllText(certificate, string.Concat(new[] { leaf }.Concat(intermediates).Select(c => c.ExportCertificatePem() + "\n")));
        using var privateKey = leaf.GetECDsaPrivateKey()!;
        File.WriteAllText(key, privateKey.ExportPkcs8PrivateKeyPem());
        return (certificate, key);
    }

    /// <summary>An ECDSA P-256 certificate with its key: self-signed when <paramref name="issuer"/> is null.</summary>
    private static X509Certificate2 Issue(X509Certificate2? issuer, string subject, bool isCa, params string[] names)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(isCa, false, 0, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        if (isCa)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        }
        else
        {
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
            var san = new SubjectAlternativeNameBuilder();
            foreach (var n in names)
            {
                if (IPAddress.TryParse(n, out var ip))
                {
                    san.AddIpAddress(ip);
                }
                else
                {
                    san.AddDnsName(n);
                }
            }
            request.CertificateExtensions.Add(san.Build());
        }
        var now = DateTimeOffset.UtcNow;
        if (issuer is null)
        {
            return request.CreateSelfSigned(now.AddHours(-1), now.AddDays(30));
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        using var certificate = request.Create(issuer, now.AddHours(-1), now.AddDays(10), RandomNumberGenerator.GetBytes(8));
        return certificate.CopyWithPrivateKey(key);
    }
}
