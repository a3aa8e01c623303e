namespace Wharf.Gateway.Tls;

/// <summary><c>Wharf:Tls</c>: HTTPS on the gateway's listen URLs (docs/security.md, "TLS").</summary>
public sealed class TlsOptions
{
    public const string Section = "Wharf:Tls";

    /// <summary>
    /// <c>Off</c>, <c>Files</c> (a PEM certificate and key: <see cref="Certificate"/>, <see cref="Key"/>) or
    /// <c>Development</c> (a local CA and a server certificate made on first start). Empty: <c>Files</c> when
    /// <see cref="Certificate"/> is set, else <c>Off</c>.
    /// </summary>
    public string? Mode { get; set; }

    /// <summary>PEM file: the server certificate first, then any intermediates. Re-read when it changes.</summary>
    public string? Certificate { get; set; }

    /// <summary>PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted). Re-read when it changes.</summary>
    public string? Key { get; set; }

    /// <summary>Development: the folder of the CA and server certificate (all-in-one default <c>&lt;DataPath&gt;/tls</c>).</summary>
    public string? DevelopmentPath { get; set; }

    /// <summary>Development: names and addresses the server certificate covers besides localhost, 127.0.0.1, ::1 and the machine name.</summary>
    public List<string> DevelopmentNames { get; set; } = [];

    public bool IsDevelopment => string.Equals(Mode, "Development", StringComparison.OrdinalIgnoreCase);

    public bool IsFiles => string.Equals(Mode, "Files", StringComparison.OrdinalIgnoreCase)
        || (string.IsNullOrEmpty(Mode) && !string.IsNullOrEmpty(Certificate));

    public bool IsEnabled => IsFiles || IsDevelopment;

    public IEnumerable<string> Validate()
    {
        if (!string.IsNullOrEmpty(Mode) && !IsEnabled && !string.Equals(Mode, "Off", StringComparison.OrdinalIgnoreCase))
        {
            yield return $"Wharf:Tls:Mode must be Off, Files or Development, not '{Mode}'";
        }
        if (IsFiles && (string.IsNullOrWhiteSpace(Certificate) || string.IsNullOrWhiteSpace(Key)))
        {
            yield return "Wharf:Tls needs both Wharf:Tls:Certificate and Wharf:Tls:Key (PEM files)";
        }
        if (IsDevelopment && (!string.IsNullOrEmpty(Certificate) || !string.IsNullOrEmpty(Key)))
        {
            yield return "Wharf:Tls:Mode=Development makes its own certificate: remove Wharf:Tls:Certificate and Wharf:Tls:Key, or use Mode=Files";
        }
    }
}
