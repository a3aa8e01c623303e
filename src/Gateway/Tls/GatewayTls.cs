using System.Security.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Wharf.Gateway.Tls;

/// <summary>
/// The gateway's listen URLs and HTTPS on them, for both hosts that serve the registry API (the gateway process and
/// the all-in-one). <c>https://</c> URLs serve the configured certificate with TLS 1.2 or 1.3 only, HTTP/2 and
/// HTTP/1.1 by ALPN; <c>http://</c> URLs stay plain (a health port behind a proxy, say).
/// </summary>
public static class GatewayTls
{
    public const string DefaultPlainUrl = "http://127.0.0.1:5000";
    public const string DefaultTlsUrl = "https://127.0.0.1:5000";

    /// <summary>
    /// Sets the default URL when none is given, checks that TLS settings and URLs agree, makes or loads the
    /// certificate and configures Kestrel. Returns the problem that must stop the start, or null.
    /// </summary>
    /// <param name="developmentPath">Development mode's folder when <c>Wharf:Tls:DevelopmentPath</c> is not set (the all-in-one's <c>&lt;DataPath&gt;/tls</c>); null: the setting is required.</param>
    public static string? Configure(WebApplicationBuilder builder, TlsOptions options, string? developmentPath, ILogger logger)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            return string.Join("; ", problems);
        }
        var urls = ListenUrls(builder.Configuration);
        if (urls.Count == 0)
        {
            urls = [options.IsEnabled ? DefaultTlsUrl : DefaultPlainUrl];
            builder.WebHost.UseUrls(urls[0]);
        }
        var tlsUrls = urls.Where(u => u.StartsWith("https://", StringComparison.OrdinalIgnoreCase)).ToList();
        if (!options.IsEnabled)
        {
            return tlsUrls.Count > 0
                ? $"{tlsUrls[0]} is an https:// URL: set Wharf:Tls:Certificate and Wharf:Tls:Key, or Wharf:Tls:Mode=Development"
                : null;
        }
        if (tlsUrls.Count == 0)
        {
            return $"Wharf:Tls is on but no listen URL is https:// (urls: {string.Join(";", urls)})";
        }

        PemCertificateSource source;
        try
        {
            var (certificate, key) = (options.Certificate!, options.Key!);
            if (options.IsDevelopment)
            {
                var folder = options.DevelopmentPath ?? developmentPath;
                if (string.IsNullOrWhiteSpace(folder))
                {
                    return "Wharf:Tls:Mode=Development on a gateway process needs Wharf:Tls:DevelopmentPath (a folder for the CA and certificate; give every gateway the same one)";
                }
                var hosts = tlsUrls.Select(u => UrlHost(u)).Where(h => h is not null && !IsWildcard(h)).Select(h => h!);
                var made = DevelopmentCertificateAuthority.Ensure(Path.GetFullPath(folder), options.DevelopmentNames.Concat(hosts));
                (certificate, key) = (made.CertificatePath, made.KeyPath);
                if (made.CaCreated)
                {
                    Console.Out.WriteLine(TrustInstructions(made.CaCertificatePath, PublicHostPort(tlsUrls[0])));
                }
                else
                {
                    logger.LogInformation("TLS development mode: CA {Ca}{Issued}; how clients trust it: docs/security.md, \"TLS\"",
                        made.CaCertificatePath, made.ServerIssued ? ", a new server certificate for " + string.Join(", ", made.Names) : "");
                }
            }
            source = PemCertificateSource.Load(Path.GetFullPath(certificate), Path.GetFullPath(key), logger);
        }
        catch (TlsConfigurationException e)
        {
            return e.Message;
        }
        logger.LogInformation("TLS: serving {Subject} (valid until {NotAfter:u}) on {Urls}",
            source.Certificate.Subject, source.Certificate.NotAfter.ToUniversalTime(), string.Join(";", tlsUrls));

        builder.Services.AddSingleton(source);
        var http2 = builder.Configuration.GetSection("Kestrel:Limits:Http2");
        builder.WebHost.ConfigureKestrel(k =>
        {
            source.UseLogger(k.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PemCertificateSource)));
            // Clients that speak TLS negotiate HTTP/2 (containerd, skopeo, podman: Go's net/http does), and an HTTP/2
            // upload moves at most one flow-control window per round trip: Kestrel's defaults (1 MiB per connection,
            // 768 KiB per stream) cap a layer push at ~100 MB/s at 10 ms RTT, where HTTP/1.1 has TCP's auto-tuned
            // window. The silo's byte port uses the same sizes (FACTS: gRPC uploads 505–555 vs 290–410 MB/s).
            // Kestrel:Limits:Http2:* in configuration still wins.
            if (http2["InitialConnectionWindowSize"] is null)
            {
                k.Limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
            }
            if (http2["InitialStreamWindowSize"] is null)
            {
                k.Limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
            }
            k.ConfigureHttpsDefaults(https =>
            {
                https.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
                // Kestrel needs a certificate (or selector) to accept the endpoint; each handshake then takes the
                // current certificate context, which carries the intermediates and follows rotation.
                https.ServerCertificateSelector = (_, _) => source.Certificate;
                https.OnAuthenticate = (_, ssl) =>
                {
                    ssl.ServerCertificateSelectionCallback = null;
                    ssl.ServerCertificate = null;
                    ssl.ServerCertificateContext = source.Context;
                };
            });
        });
        return null;
    }

    /// <summary>The <c>urls</c> setting (or <c>ASPNETCORE_URLS</c>), split.</summary>
    public static List<string> ListenUrls(IConfiguration configuration) =>
        [.. (configuration["urls"] is { Length: > 0 } u ? u : configuration["ASPNETCORE_URLS"] ?? "")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>How to trust the development CA, printed once when it is made (docs/security.md has the same).</summary>
    public static string TrustInstructions(string caPath, string hostPort) => $"""
        wharf: made a development CA for TLS: {caPath} (10 years). Trust it in each client, for {hostPort}:
          docker:                   sudo mkdir -p /etc/docker/certs.d/{hostPort} && sudo cp {caPath} /etc/docker/certs.d/{hostPort}/ca.crt
          podman, buildah, skopeo:  sudo mkdir -p /etc/containers/certs.d/{hostPort} && sudo cp {caPath} /etc/containers/certs.d/{hostPort}/ca.crt
                                    (or per command: copy ca.crt alone into a folder and pass --cert-dir FOLDER;
                                     skopeo copy: --src-cert-dir / --dest-cert-dir)
          containerd (ctr):         ctr images pull --tlscacert {caPath} --hosts-dir DIR {hostPort}/REPO:TAG
                                    where DIR/{hostPort}/hosts.toml holds: server = "https://{hostPort}"
                                      [host."https://{hostPort}"]
                                        capabilities = ["pull", "resolve", "push"]
                                    (without it ctr speaks plain HTTP to localhost and 127.0.0.1)
          containerd (CRI, nerdctl): /etc/containerd/certs.d/{hostPort}/hosts.toml as above, with ca = "{caPath}" in the [host] table
          all of them at once:      sudo cp {caPath} /usr/local/share/ca-certificates/wharf-dev.crt && sudo update-ca-certificates
        details: docs/security.md, "TLS"
        """;

    private static string? UrlHost(string url) =>
        Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
            ? uri.Host.Trim('[', ']')
            : null;

    private static bool IsWildcard(string host) => host is "0.0.0.0" or "::" or "localhost";

    private static string PublicHostPort(string url)
    {
        var uri = new Uri(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal));
        var host = uri.Host is "0.0.0.0" or "[::]" ? Environment.MachineName.ToLowerInvariant() : uri.Host;
        return $"{host}:{uri.Port}";
    }
}
