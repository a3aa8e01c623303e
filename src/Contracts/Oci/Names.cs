using System.Text.RegularExpressions;

namespace Wharf.Contracts.Oci;

/// <summary>
/// The distribution-spec grammars for repository names and tags (spec.md, "Pulling manifests"). The patterns end in
/// <c>\z</c>, not <c>$</c>: .NET's <c>$</c> also matches before a final newline, which let "latest\n" through as a tag.
/// </summary>
public static partial class Names
{
    public const int MaxNameLength = 255;

    [GeneratedRegex("^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= MaxNameLength && NamePattern().IsMatch(name);

    public static bool IsValidTag(string tag) => TagPattern().IsMatch(tag);
}
