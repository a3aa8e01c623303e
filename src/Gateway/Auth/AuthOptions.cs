namespace Wharf.Gateway.Auth;

/// <summary><c>Wharf:Auth</c>: who may use the registry.</summary>
public sealed class AuthOptions
{
    public const string Section = "Wharf:Auth";

    /// <summary><c>None</c> (the all-in-one default: open, with a warning) or <c>Basic</c> (an htpasswd file).</summary>
    public string Mode { get; set; } = "None";

    /// <summary>Basic: an htpasswd file with bcrypt entries, as <c>htpasswd -B</c> writes them (Distribution's format).</summary>
    public string? Htpasswd { get; set; }

    /// <summary>The realm named in the <c>WWW-Authenticate</c> challenge.</summary>
    public string Realm { get; set; } = "wharf";

    public bool IsBasic => string.Equals(Mode, "Basic", StringComparison.OrdinalIgnoreCase);

    public bool IsNone => string.Equals(Mode, "None", StringComparison.OrdinalIgnoreCase);

    public IEnumerable<string> Validate()
    {
        if (!IsBasic && !IsNone)
        {
            yield return $"Wharf:Auth:Mode must be None or Basic, not '{Mode}'";
        }
        if (IsBasic && (string.IsNullOrWhiteSpace(Htpasswd) || !File.Exists(Htpasswd)))
        {
            yield return $"Wharf:Auth:Htpasswd must name an existing htpasswd file when Wharf:Auth:Mode is Basic (got '{Htpasswd}')";
        }
    }
}
