using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Wharf.Gateway.Tls;

/// <summary>
/// Development mode: a local CA (ECDSA P-256, 10 years) and a server certificate it signs, kept in one folder
/// (<c>ca.crt</c>, <c>ca.key</c>, <c>server.crt</c>, <c>server.key</c>; keys mode 0600). Made on first start and
/// reused after, so a client that trusts <c>ca.crt</c> once keeps trusting the registry. The server certificate is
/// issued again from the same CA when it no longer covers the configured names or has under 30 days left.
/// </summary>
public static class DevelopmentCertificateAuthority
{
    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";
    public const string ServerCertificateFile = "server.crt";
    public const string ServerKeyFile = "server.key";

    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3653);
    // 825 days: the longest lifetime Apple's TLS stack accepts for a server certificate from any CA.
    private static readonly TimeSpan ServerLifetime = TimeSpan.FromDays(825);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    public sealed record Result(string Folder, string CaCertificatePath, string CertificatePath, string KeyPath, bool CaCreated, bool ServerIssued, IReadOnlyList<string> Names);

    /// <summary>The names every development certificate covers, then <paramref name="extraNames"/>.</summary>
    public static IReadOnlyList<string> NamesFor(IEnumerable<string> extraNames)
    {
        var names = new List<string> { "localhost", "127.0.0.1", "::1", Environment.MachineName.ToLowerInvariant() };
        foreach (var n in extraNames)
        {
            var name = n.Trim().Trim('[', ']');
            if (name.Length > 0 && !names.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                names.Add(IPAddress.TryParse(name, out _) ? name : name.ToLowerInvariant());
            }
        }
        return names;
    }

    /// <summary>Makes or reuses the CA and server certificate in <paramref name="folder"/>.</summary>
    public static Result Ensure(string folder, IEnumerable<string> extraNames, TimeProvider? time = null)
    {
        var now = (time ?? TimeProvider.System).GetUtcNow();
        var names = NamesFor(extraNames);
        var caCrt = Path.Combine(folder, CaCertificateFile);
        var caKey = Path.Combine(folder, CaKeyFile);
        var serverCrt = Path.Combine(folder, ServerCertificateFile);
        var serverKey = Path.Combine(folder, ServerKeyFile);
        try
        {
            Directory.CreateDirectory(folder);
            var caCreated = false;
            X509Certificate2 ca;
            if (File.Exists(caCrt) && File.Exists(caKey))
            {
                ca = X509Certificate2.CreateFromPemFile(caCrt, caKey);
            }
            else
            {
                ca = CreateCa(now);
                using var key = ca.GetECDsaPrivateKey()!;
                WriteFile(caKey, key.ExportPkcs8PrivateKeyPem(), secret: true);
                WriteFile(caCrt, ca.ExportCertificatePem(), secret: false);
                caCreated = true;
            }
            using (ca)
            {
                var issue = caCreated || !ServerCertificateFits(serverCrt, serverKey, ca, names, now);
                if (issue)
                {
                    var (certificate, key) = IssueServer(ca, names, now);
                    WriteFile(serverKey, key, secret: true);
                    WriteFile(serverCrt, certificate, secret: false);
                }
                return new Result(folder, caCrt, serverCrt, serverKey, caCreated, issue, names);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new TlsConfigurationException($"cannot make or read the development CA in {folder}: {e.Message}");
        }
    }

    private static X509Certificate2 CreateCa(DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=Wharf development CA ({Environment.MachineName}), O=Wharf", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddHours(-1), now.Add(CaLifetime));
    }

    private static (string Certificate, string Key) IssueServer(X509Certificate2 ca, IReadOnlyList<string> names, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={names[0]}, O=Wharf development", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var ip))
            {
                san.AddIpAddress(ip);
            }
            else
            {
                san.AddDnsName(name);
            }
        }
        request.CertificateExtensions.Add(san.Build());
        var notAfter = now.Add(ServerLifetime) < ca.NotAfter ? now.Add(ServerLifetime) : new DateTimeOffset(ca.NotAfter.ToUniversalTime());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var certificate = request.Create(ca, now.AddHours(-1), notAfter, serial);
        return (certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>The kept server certificate loads with its key, was signed by this CA, covers every name and is not about to expire.</summary>
    private static bool ServerCertificateFits(string certificatePath, string keyPath, X509Certificate2 ca, IReadOnlyList<string> names, DateTimeOffset now)
    {
        if (!File.Exists(certificatePath) || !File.Exists(keyPath))
        {
            return false;
        }
        X509Certificate2 server;
        try
        {
            server = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException)
        {
            return false;
        }
        using (server)
        {
            if (server.NotAfter.ToUniversalTime() - now.UtcDateTime < RenewBefore)
            {
                return false;
            }
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = now.UtcDateTime;
            if (!chain.Build(server))
            {
                return false;
            }
            return names.All(n => server.MatchesHostname(n, allowWildcards: false));
        }
    }

    /// <summary>Written beside, then renamed into place; key files are created 0600, never readable by others even briefly.</summary>
    private static void WriteFile(string path, string text, bool secret)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = secret ? UnixFileMode.UserRead | UnixFileMode.UserWrite
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
