using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Wharf.Gateway.Auth;

/// <summary>
/// Issues and validates registry tokens. Validation is local (the keys are files every gateway holds), so no call
/// leaves the process per request; a validated token is remembered for a few seconds so a client that sends the
/// same token on every request pays for one signature check, not one per request.
/// </summary>
public sealed class TokenService
{
    private const int MaxCached = 10_000;
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    private readonly TokenOptions _options;
    private readonly TokenKey? _signing;
    private readonly IReadOnlyList<TokenKey> _verification;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, (TokenClaims Claims, DateTimeOffset Until)> _validated = new(StringComparer.Ordinal);

    public TokenService(TokenOptions options, TokenKey? signing, IReadOnlyList<TokenKey> verification, TimeProvider? time = null)
    {
        _options = options;
        _signing = signing;
        _verification = verification;
        _time = time ?? TimeProvider.System;
    }

    public string Audience => _options.Audience;

    public string RefreshAudience => _options.Audience + "/refresh";

    public bool CanIssue => _signing is not null;

    public TimeSpan Lifetime => TimeSpan.FromSeconds(_options.LifetimeSeconds);

    /// <summary>The signing key from <c>Wharf:Auth:Token</c>, or the one kept in the data folder (made on first start).</summary>
    public static TokenService Load(TokenOptions options, string? dataPath, ILogger logger)
    {
        if (options.IsExternal)
        {
            var trusted = TokenOptions.KeysIn(options.TrustedKeys!, jwks: null);
            if (trusted.Count == 0)
            {
                throw new InvalidOperationException($"Wharf:Auth:Token:TrustedKeys ({options.TrustedKeys}) holds no EC P-256 or RSA key");
            }
            logger.LogInformation("token auth: trusting issuer {Issuer} with {Count} key(s) from {File}", options.Issuer, trusted.Count, options.TrustedKeys);
            return new TokenService(options, null, trusted);
        }
        TokenKey signing;
        if (options.SigningKey is { } file)
        {
            signing = TokenKey.ReadPem(File.ReadAllText(file)).FirstOrDefault(k => k.CanSign)
                ?? throw new InvalidOperationException($"Wharf:Auth:Token:SigningKey ({file}) holds no EC P-256 or RSA private key");
        }
        else if (!string.IsNullOrWhiteSpace(dataPath))
        {
            signing = KeepGenerated(Path.Combine(Path.GetFullPath(dataPath), "auth", "token-signing-key.pem"), logger);
        }
        else
        {
            throw new InvalidOperationException("Wharf:Auth:Mode=Token needs Wharf:Auth:Token:SigningKey (the same PEM file on every gateway)");
        }
        var verification = new List<TokenKey> { signing };
        foreach (var extra in options.VerificationKeys)
        {
            verification.AddRange(TokenKey.ReadPem(File.ReadAllText(extra)));
        }
        logger.LogInformation("token auth: signing with {Algorithm} key {Kid}; {Count} verification key(s)", signing.Algorithm, signing.Id, verification.Count);
        return new TokenService(options, signing, verification);
    }

    private static TokenKey KeepGenerated(string path, ILogger logger)
    {
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var key = TokenKey.Generate();
            var temp = path + ".tmp";
            var create = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var f = new FileStream(temp, create))
            using (var w = new StreamWriter(f))
            {
                w.Write(key.ExportPrivatePem());
                w.Flush();
                f.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: false);
            logger.LogWarning("token auth: generated a new signing key in {Path}; a cluster of gateways needs one shared Wharf:Auth:Token:SigningKey", path);
        }
        return TokenKey.ReadPem(File.ReadAllText(path)).First(k => k.CanSign);
    }

    public string IssueAccess(string subject, IReadOnlyList<AccessScope> access, out DateTimeOffset issuedAt) =>
        Issue(subject, [_options.Audience], access, Lifetime, out issuedAt);

    public string IssueRefresh(string subject) =>
        Issue(subject, [RefreshAudience], [], TimeSpan.FromSeconds(_options.RefreshLifetimeSeconds), out _);

    private string Issue(string subject, IReadOnlyList<string> audience, IReadOnlyList<AccessScope> access, TimeSpan lifetime, out DateTimeOffset now)
    {
        var key = _signing ?? throw new InvalidOperationException("this gateway trusts an external issuer and issues no tokens");
        now = _time.GetUtcNow();
        var claims = new TokenClaims(_options.Issuer, subject, audience, now + lifetime, now - Skew, now, Guid.NewGuid().ToString("N"), access);
        return JsonWebToken.Create(key, claims);
    }

    /// <summary>An access token for this registry: signed by a trusted key, from the issuer, for the audience, in time.</summary>
    public bool TryValidate(string token, out TokenClaims claims, out string error)
    {
        var now = _time.GetUtcNow();
        if (_validated.TryGetValue(token, out var seen) && seen.Until > now)
        {
            claims = seen.Claims;
            error = "";
            return true;
        }
        if (!TryValidate(token, _options.Audience, now, out claims, out error))
        {
            return false;
        }
        if (_validated.Count >= MaxCached)
        {
            _validated.Clear();
        }
        var until = now + CacheFor;
        _validated[token] = (claims, claims.Expires - Skew < until ? claims.Expires - Skew : until);
        return true;
    }

    public bool TryValidateRefresh(string token, out string subject, out string error)
    {
        subject = "";
        if (!CanIssue || !TryValidate(token, RefreshAudience, _time.GetUtcNow(), out var claims, out error))
        {
            error = CanIssue ? "invalid refresh token" : "no token service here";
            return false;
        }
        subject = claims.Subject;
        return subject.Length > 0;
    }

    private bool TryValidate(string token, string audience, DateTimeOffset now, out TokenClaims claims, out string error)
    {
        if (!JsonWebToken.TryRead(token, _verification, out claims, out error))
        {
            return false;
        }
        if (!string.Equals(claims.Issuer, _options.Issuer, StringComparison.Ordinal))
        {
            error = "wrong issuer";
        }
        else if (!claims.Audience.Contains(audience, StringComparer.Ordinal))
        {
            error = "wrong audience";
        }
        else if (claims.Expires + Skew <= now)
        {
            error = "token expired";
        }
        else if (claims.NotBefore - Skew > now)
        {
            error = "token not yet valid";
        }
        else
        {
            return true;
        }
        return false;
    }
}
