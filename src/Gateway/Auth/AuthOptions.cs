namespace Wharf.Gateway.Auth;

/// <summary><c>Wharf:Auth</c>: who may use the registry (docs/security.md lists every setting).</summary>
public sealed class AuthOptions
{
    public const string Section = "Wharf:Auth";

    /// <summary>
    /// <c>None</c> (the all-in-one default: open, with a warning), <c>Basic</c> (an htpasswd file) or <c>Token</c>
    /// (the Docker token flow: the gateway's own token service, or an external issuer).
    /// </summary>
    public string Mode { get; set; } = "None";

    /// <summary>Basic, and Token's own service: an htpasswd file with bcrypt entries, as <c>htpasswd -B</c> writes them.</summary>
    public string? Htpasswd { get; set; }

    /// <summary>The realm named in the Basic <c>WWW-Authenticate</c> challenge.</summary>
    public string Realm { get; set; } = "wharf";

    /// <summary>Who may do what on which repositories; empty = any authenticated user everything, anonymous nothing.</summary>
    public List<PolicyOptions> Policies { get; set; } = [];

    /// <summary>
    /// Addresses or CIDR ranges of reverse proxies whose <c>X-Forwarded-Proto</c> / <c>X-Forwarded-Host</c> are
    /// believed when the token realm is built; from anyone else these headers are ignored.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    public TokenOptions Token { get; set; } = new();

    /// <summary>The administrator created on first start, when no user is stored in the cluster yet.</summary>
    public BootstrapOptions Bootstrap { get; set; } = new();

    /// <summary>Robot accounts' names start with this (as Harbor's); no user name may.</summary>
    public const string RobotPrefix = "robot$";

    public bool IsBasic => string.Equals(Mode, "Basic", StringComparison.OrdinalIgnoreCase);

    public bool IsToken => string.Equals(Mode, "Token", StringComparison.OrdinalIgnoreCase);

    public bool IsNone => string.Equals(Mode, "None", StringComparison.OrdinalIgnoreCase);

    public IEnumerable<string> Validate()
    {
        if (!IsBasic && !IsNone && !IsToken)
        {
            yield return $"Wharf:Auth:Mode must be None, Basic or Token, not '{Mode}'";
        }
        // Users may come from the htpasswd file, the cluster's stored users, or both.
        if (!string.IsNullOrWhiteSpace(Htpasswd) && !File.Exists(Htpasswd))
        {
            yield return $"Wharf:Auth:Htpasswd names no file (got '{Htpasswd}')";
        }
        if (Bootstrap.User is { } admin && (admin.Length == 0 || admin.StartsWith(RobotPrefix, StringComparison.Ordinal) || admin.Contains(':')))
        {
            yield return $"Wharf:Auth:Bootstrap:User must be a user name (not '{admin}')";
        }
        for (var i = 0; i < Policies.Count; i++)
        {
            foreach (var p in Policies[i].Validate())
            {
                yield return $"Wharf:Auth:Policies:{i}: {p}";
            }
        }
        foreach (var proxy in TrustedProxies)
        {
            if (!TrustedProxyList.TryParse(proxy, out _))
            {
                yield return $"Wharf:Auth:TrustedProxies: '{proxy}' is neither an IP address nor a CIDR range";
            }
        }
        if (IsToken)
        {
            foreach (var p in Token.Validate())
            {
                yield return p;
            }
        }
    }
}

/// <summary>One entry of <c>Wharf:Auth:Policies</c> (or a stored policy): subjects × repository patterns × actions.</summary>
public sealed class PolicyOptions
{
    /// <summary>A stored policy's name (named in refusals); configured ones are numbered.</summary>
    public string? Name { get; set; }

    /// <summary>User and robot names, <c>team:name</c>, <c>anonymous</c>, or <c>*</c> for any authenticated identity.</summary>
    public List<string> Subjects { get; set; } = [];

    /// <summary>Glob patterns: <c>*</c> within one path segment, <c>**</c> across segments.</summary>
    public List<string> Repositories { get; set; } = [];

    /// <summary><c>pull</c>, <c>push</c>, <c>delete</c>, <c>*</c> (those three) or <c>admin</c>.</summary>
    public List<string> Actions { get; set; } = [];

    /// <summary>Existing tags of matching repositories may not be moved to another digest (Subjects and Actions may then be empty).</summary>
    public bool ImmutableTags { get; set; }

    public IEnumerable<string> Validate()
    {
        var grants = !ImmutableTags || Subjects.Count > 0 || Actions.Count > 0;
        if (grants && (Subjects.Count == 0 || Subjects.Any(string.IsNullOrWhiteSpace)))
        {
            yield return "Subjects must list at least one user or robot name, 'team:<name>', 'anonymous' or '*'";
        }
        if (Repositories.Count == 0 || Repositories.Any(string.IsNullOrWhiteSpace) || Repositories.Any(r => r.Length > 256))
        {
            yield return "Repositories must list at least one pattern";
        }
        if (grants && (Actions.Count == 0 || Actions.Any(a => a is not ("pull" or "push" or "delete" or "admin" or "*"))))
        {
            yield return $"Actions must be among pull, push, delete, admin, * (got '{string.Join(",", Actions)}')";
        }
    }
}

/// <summary><c>Wharf:Auth:Bootstrap</c>: the first administrator, created once when the cluster stores no user.</summary>
public sealed class BootstrapOptions
{
    public string? User { get; set; }

    /// <summary>Or the environment variable <c>WHARF_ADMIN_PASSWORD</c>. Never logged.</summary>
    public string? Password { get; set; }

    public string? EffectivePassword => string.IsNullOrEmpty(Password) ? Environment.GetEnvironmentVariable("WHARF_ADMIN_PASSWORD") : Password;
}

/// <summary><c>Wharf:Auth:Token</c>: the token service and what tokens are accepted.</summary>
public sealed class TokenOptions
{
    /// <summary>
    /// A PEM private key (EC P-256 → ES256, or RSA ≥ 2048 bits → RS256) that signs tokens. Every gateway mounts the
    /// same file. Unset in the all-in-one: one is generated in <c>&lt;DataPath&gt;/auth/</c> on first start and kept.
    /// </summary>
    public string? SigningKey { get; set; }

    /// <summary>More PEM keys (public or private) whose tokens are still accepted: the old key during a rotation.</summary>
    public List<string> VerificationKeys { get; set; } = [];

    /// <summary>The <c>iss</c> of tokens issued here, or the external issuer trusted instead.</summary>
    public string Issuer { get; set; } = "wharf";

    /// <summary>The service: the <c>aud</c> tokens must carry and the <c>service</c> named in challenges.</summary>
    public string Audience { get; set; } = "wharf-registry";

    /// <summary>
    /// External issuer: a JWKS file (<c>.json</c>) or a PEM bundle of certificates / public keys. When set, the
    /// gateway serves no token endpoint and accepts only that issuer's tokens; <see cref="Realm"/> must name it.
    /// </summary>
    public string? TrustedKeys { get; set; }

    /// <summary>The token endpoint named in challenges; default <c>&lt;public URL of the request&gt;/auth/token</c>.</summary>
    public string? Realm { get; set; }

    /// <summary>Access-token lifetime; the spec suggests at least 60 s, Distribution's example uses 300 s.</summary>
    public int LifetimeSeconds { get; set; } = 300;

    /// <summary>Refresh-token lifetime (<c>offline_token=true</c>, <c>access_type=offline</c>).</summary>
    public int RefreshLifetimeSeconds { get; set; } = 30 * 24 * 3600;

    public bool IsExternal => !string.IsNullOrWhiteSpace(TrustedKeys);

    /// <summary>The keys of a file, or none when it cannot be read as keys; <paramref name="jwks"/> null: by content.</summary>
    internal static List<TokenKey> KeysIn(string path, bool? jwks)
    {
        try
        {
            var text = File.ReadAllText(path);
            return (jwks ?? text.TrimStart().StartsWith('{')) ? TokenKey.ReadJwks(text) : TokenKey.ReadPem(text);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException
                                      or System.Text.Json.JsonException or ArgumentException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            return [];
        }
    }

    public IEnumerable<string> Validate()
    {
        if (LifetimeSeconds is < 60 or > 86400)
        {
            yield return $"Wharf:Auth:Token:LifetimeSeconds must be between 60 and 86400 (got {LifetimeSeconds})";
        }
        if (RefreshLifetimeSeconds < LifetimeSeconds)
        {
            yield return "Wharf:Auth:Token:RefreshLifetimeSeconds must not be shorter than LifetimeSeconds";
        }
        if (string.IsNullOrWhiteSpace(Issuer) || string.IsNullOrWhiteSpace(Audience))
        {
            yield return "Wharf:Auth:Token:Issuer and Audience must not be empty";
        }
        if (SigningKey is not null && !File.Exists(SigningKey))
        {
            yield return $"Wharf:Auth:Token:SigningKey names no file ('{SigningKey}')";
        }
        else if (SigningKey is not null && !KeysIn(SigningKey, jwks: false).Any(k => k.CanSign))
        {
            yield return $"Wharf:Auth:Token:SigningKey ('{SigningKey}') holds no EC P-256 or RSA (≥ 2048 bits) private key in PEM";
        }
        foreach (var key in VerificationKeys.Where(k => !File.Exists(k)))
        {
            yield return $"Wharf:Auth:Token:VerificationKeys names no file ('{key}')";
        }
        if (IsExternal && !File.Exists(TrustedKeys))
        {
            yield return $"Wharf:Auth:Token:TrustedKeys names no file ('{TrustedKeys}')";
        }
        else if (IsExternal && KeysIn(TrustedKeys!, jwks: null).Count == 0)
        {
            yield return $"Wharf:Auth:Token:TrustedKeys ('{TrustedKeys}') holds no usable key (a JWKS file, or PEM certificates / public keys; EC P-256 or RSA)";
        }
        if (IsExternal && string.IsNullOrWhiteSpace(Realm))
        {
            yield return "Wharf:Auth:Token:Realm must name the external issuer's token endpoint when TrustedKeys is set";
        }
    }
}
