namespace Wharf.Gateway.Auth;

/// <summary>
/// One resource scope of the token spec (Distribution docs/content/spec/auth/scope.md):
/// <c>resourcetype[(class)]:resourcename:action[,action…]</c>, e.g. <c>repository:team-a/app:pull,push</c> or
/// <c>registry:catalog:*</c>. A name may itself hold ':' (a host with a port), so the type ends at the first
/// ':' and the actions start after the last.
/// </summary>
public sealed record AccessScope(string Type, string Name, IReadOnlyList<string> Actions)
{
    public const string Repository = "repository";
    public const string Registry = "registry";
    public const string Catalog = "catalog";

    private const int MaxLength = 1024;

    public static bool TryParse(string? text, out AccessScope scope)
    {
        scope = null!;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }
        var first = text.IndexOf(':');
        var last = text.LastIndexOf(':');
        if (first <= 0 || last <= first + 1 || last == text.Length - 1)
        {
            return false;
        }
        var type = text[..first];
        var paren = type.IndexOf('(');
        if (paren >= 0)
        {
            // A resource class (`repository(plugin)`): it names the same repositories, so it grants the same.
            if (paren == 0 || !type.EndsWith(')') || type.IndexOf(')') != type.Length - 1 || !IsWord(type[(paren + 1)..^1]))
            {
                return false;
            }
            type = type[..paren];
        }
        if (!IsWord(type))
        {
            return false;
        }
        var name = text[(first + 1)..last];
        var actions = text[(last + 1)..].Split(',');
        if (name.Any(char.IsWhiteSpace) || actions.Any(a => a.Length == 0 || !(a == "*" || IsWord(a))))
        {
            return false;
        }
        scope = new AccessScope(type, name, actions.Distinct(StringComparer.Ordinal).ToArray());
        return true;
    }

    /// <summary>All scopes of a request: repeated <c>scope</c> parameters, each possibly space-separated (OAuth2 form).</summary>
    public static bool TryParseAll(IEnumerable<string?> values, out List<AccessScope> scopes)
    {
        scopes = [];
        foreach (var value in values)
        {
            foreach (var part in (value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!TryParse(part, out var scope))
                {
                    return false;
                }
                scopes.Add(scope);
            }
        }
        return scopes.Count <= 64;
    }

    public override string ToString() => $"{Type}:{Name}:{string.Join(",", Actions)}";

    private static bool IsWord(string s) => s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
}
