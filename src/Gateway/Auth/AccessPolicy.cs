using System.Text;
using System.Text.RegularExpressions;

namespace Wharf.Gateway.Auth;

/// <summary>
/// <c>Wharf:Auth:Policies</c> evaluated: which actions (pull, push, delete) a subject has on a repository. Used by
/// Basic mode on every request and by the token service when it grants scopes. With no policy configured, any
/// authenticated identity may do everything and anonymous nothing (the Basic behaviour before policies existed).
/// </summary>
public sealed class AccessPolicy
{
    public const string Pull = "pull";
    public const string Push = "push";
    public const string Delete = "delete";
    public const string Anonymous = "anonymous";
    public static readonly IReadOnlyList<string> AllActions = [Pull, Push, Delete];

    private readonly List<(HashSet<string> Subjects, Regex[] Repositories, string[] Actions)> _rules = [];

    public AccessPolicy(IEnumerable<PolicyOptions> policies)
    {
        foreach (var p in policies)
        {
            var actions = p.Actions.Contains("*") ? [.. AllActions] : p.Actions.Distinct().ToArray();
            _rules.Add((p.Subjects.ToHashSet(StringComparer.Ordinal), p.Repositories.Select(Glob).ToArray(), actions));
        }
    }

    public bool IsDefault => _rules.Count == 0;

    /// <summary>The actions <paramref name="subject"/> (null: anonymous) may do on <paramref name="repository"/>.</summary>
    public IReadOnlyList<string> Allowed(string? subject, string repository)
    {
        if (_rules.Count == 0)
        {
            return subject is null ? [] : AllActions;
        }
        List<string>? allowed = null;
        foreach (var (subjects, repositories, actions) in _rules)
        {
            if (!Matches(subjects, subject) || !repositories.Any(r => r.IsMatch(repository)))
            {
                continue;
            }
            allowed ??= [];
            foreach (var a in actions)
            {
                if (!allowed.Contains(a))
                {
                    allowed.Add(a);
                }
            }
        }
        return allowed ?? (IReadOnlyList<string>)[];
    }

    public bool Allows(string? subject, string repository, string action) => Allowed(subject, repository).Contains(action);

    /// <summary>Whether the subject holds any grant at all (anonymous may then reach <c>_catalog</c>).</summary>
    public bool HasAnyGrant(string? subject) => _rules.Count == 0 ? subject is not null : _rules.Any(r => Matches(r.Subjects, subject));

    // What anonymous may do (public repositories), any authenticated identity may do too.
    private static bool Matches(HashSet<string> subjects, string? subject) =>
        subjects.Contains(Anonymous) || (subject is not null && (subjects.Contains(subject) || subjects.Contains("*")));

    /// <summary><c>**</c> matches across '/', <c>*</c> within one path segment; everything else literally.</summary>
    public static Regex Glob(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            if (pattern[i] == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                regex.Append(".*");
                i++;
            }
            else if (pattern[i] == '*')
            {
                regex.Append("[^/]*");
            }
            else
            {
                regex.Append(Regex.Escape(pattern[i].ToString()));
            }
        }
        return new Regex(regex.Append('$').ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
    }
}
