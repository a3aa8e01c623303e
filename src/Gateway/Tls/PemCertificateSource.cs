using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Wharf.Gateway.Tls;

/// <summary>
/// The server certificate from a PEM certificate file (leaf first, then intermediates, which are sent in the
/// handshake) and a PEM key file. Each handshake asks for <see cref="Context"/>; at most once a second that looks at
/// both files' size and time, and a change loads them again, so a renewed certificate (certbot, cert-manager, a
/// mounted secret) is served without a restart. A pair that does not load (say the certificate is written and the key
/// not yet) leaves the previous one in service and is tried again when either file changes.
/// </summary>
public sealed class PemCertificateSource
{
    private static readonly long CheckIntervalMs = 1000;
    private readonly string certificatePath;
    private readonly string keyPath;
    private ILogger? logger;
    private readonly Lock reloadLock = new();
    private Loaded current;
    private (FileStamp Certificate, FileStamp Key) lastSeen;
    private long lastCheck;

    private PemCertificateSource(string certificatePath, string keyPath, ILogger? logger, Loaded loaded, (FileStamp, FileStamp) stamps)
    {
        this.certificatePath = certificatePath;
        this.keyPath = keyPath;
        this.logger = logger;
        current = loaded;
        lastSeen = stamps;
        lastCheck = Environment.TickCount64;
    }

    /// <summary>The certificate in service (the leaf, with its private key).</summary>
    public X509Certificate2 Certificate => current.Leaf;

    /// <summary>The certificate and its intermediates for the next handshake, reloaded first if the files changed.</summary>
    public SslStreamCertificateContext Context
    {
        get
        {
            ReloadIfChanged();
            return current.Context;
        }
    }

    /// <summary>Loads the pair; a missing, unreadable or mismatched pair throws <see cref="TlsConfigurationException"/>.</summary>
    public static PemCertificateSource Load(string certificatePath, string keyPath, ILogger? logger = null)
    {
        var stamps = (FileStamp.Of(certificatePath), FileStamp.Of(keyPath));
        return new PemCertificateSource(certificatePath, keyPath, logger, LoadPair(certificatePath, keyPath), stamps);
    }

    /// <summary>Where reloads are logged once the host's logging runs (the start's logger is gone by then).</summary>
    public void UseLogger(ILogger logger) => this.logger = logger;

    /// <summary>Looks at the files now (the handshake path does this at most once a second).</summary>
    public void ReloadIfChanged(bool force = false)
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref lastCheck);
        if (!force && (now - last < CheckIntervalMs || Interlocked.CompareExchange(ref lastCheck, now, last) != last))
        {
            return;
        }
        lock (reloadLock)
        {
            var stamps = (FileStamp.Of(certificatePath), FileStamp.Of(keyPath));
            if (stamps == lastSeen)
            {
                return;
            }
            lastSeen = stamps;
            try
            {
                var loaded = LoadPair(certificatePath, keyPath);
                current = loaded;
                logger?.LogInformation("TLS: loaded the new certificate {Subject} (valid until {NotAfter:u}) from {Path}",
                    loaded.Leaf.Subject, loaded.Leaf.NotAfter.ToUniversalTime(), certificatePath);
            }
            catch (TlsConfigurationException e)
            {
                logger?.LogWarning("TLS: {Problem}; still serving the previous certificate", e.Message);
            }
        }
    }

    private static Loaded LoadPair(string certificatePath, string keyPath)
    {
        try
        {
            var leaf = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(certificatePath);
            var intermediates = new X509Certificate2Collection();
            foreach (var c in all)
            {
                if (!c.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
                {
                    intermediates.Add(c);
                }
            }
            if (!HasServerAuthUsage(leaf))
            {
                throw new TlsConfigurationException($"the certificate {certificatePath} is not for server authentication (its extended key usage lacks serverAuth)");
            }
            return new Loaded(leaf, SslStreamCertificateContext.Create(leaf, intermediates, offline: true));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new TlsConfigurationException($"cannot load the TLS certificate {certificatePath} with the key {keyPath}: {e.Message}");
        }
    }

    private static bool HasServerAuthUsage(X509Certificate2 certificate)
    {
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension eku)
            {
                foreach (var oid in eku.EnhancedKeyUsages)
                {
                    if (oid.Value == "1.3.6.1.5.5.7.3.1")
                    {
                        return true;
                    }
                }
                return false;
            }
        }
        return true;
    }

    private sealed record Loaded(X509Certificate2 Leaf, SslStreamCertificateContext Context);

    private readonly record struct FileStamp(long Length, DateTime WrittenUtc)
    {
        public static FileStamp Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : default;
        }
    }
}

/// <summary>TLS settings or files that cannot be used: the process stops at start with this message.</summary>
public sealed class TlsConfigurationException(string message) : Exception(message);
