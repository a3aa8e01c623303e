using System.Text;
using System.Text.RegularExpressions;

namespace Wharf.Gateway.Auth;

/// <summary>
/// The policies in force, evaluated: which actions (pull, push, delete, admin) a subject has on a repository, and
/// which repositories' tags are immutable. The configuration's <c>Wharf:Auth:Policies</c> and the policies stored in
/// the cluster combine as a union (a policy only grants; none denies). Subjects are user and robot names,
/// <c>team:name</c> (any member of the stored team), <c>anonymous</c> and <c>*</c>. With no policy at all (neither
/// configured nor stored), any authenticated identity may pull, push and delete everything and anonymous nothing
/// (the Basic behaviour before policies existed); <c>admin</c> is never granted that way.
/// </summary>
public sealed class AccessPolicy
{
    public const string Pull = "pull";
    public const string Push = "push";
    public const string Delete = "delete";
    public const string Admin = "admin";
    public const string Anonymous = "anonymous";
    public const string TeamPrefix = "team:";
    public static readonly IReadOnlyList<string> AllActions = [Pull, Push, Delete];

    private static readonly IReadOnlyDictionary<string, string[]> NoTeams = new Dictionary<string, string[]>();

    private readonly List<Rule> _rules = [];
    private readonly List<(string Name, string Pattern, Regex Regex)> _immutable = [];
    private readonly IReadOnlyDictionary<string, string[]> _teamsOf;

    private sealed record Rule(HashSet<string> Subjects, string[] Patterns, Regex[] Repositories, string[] Actions);

    /// <param name="policies">Every policy in force, configured and stored.</param>
    /// <param name="teamsOf">Member name → the stored teams it belongs to.</param>
    public AccessPolicy(IEnumerable<PolicyOptions> policies, IReadOnlyDictionary<string, string[]>? teamsOf = null)
    {
        _teamsOf = teamsOf ?? NoTeams;
        var index = 0;
        foreach (var p in policies)
        {
            index++;
            if (p.ImmutableTags)
            {
                foreach (var pattern in p.Repositories)
                {
                    _immutable.Add((p.Name ?? $"#{index}", pattern, Glob(pattern)));
                }
            }
            if (p.Actions.Count == 0 || p.Subjects.Count == 0)
            {
                continue;
            }
            var actions = p.Actions.SelectMany(a => a == "*" ? AllActions : [a]).Distinct().ToArray();
            _rules.Add(new Rule(p.Subjects.ToHashSet(StringComparer.Ordinal), [.. p.Repositories], [.. p.Repositories.Select(Glob)], actions));
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
        foreach (var rule in _rules)
        {
            if (!Matches(rule.Subjects, subject) || !rule.Repositories.Any(r => r.IsMatch(repository)))
            {
                continue;
            }
            allowed ??= [];
            foreach (var a in rule.Actions)
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

    /// <summary>The repository patterns on which the subject holds <c>admin</c> (<c>**</c> among them: a full administrator).</summary>
    public IReadOnlyList<string> AdminPatterns(string? subject) =>
        subject is null ? [] : [.. _rules.Where(r => r.Actions.Contains(Admin) && Matches(r.Subjects, subject)).SelectMany(r => r.Patterns).Distinct()];

    /// <summary>The immutability rule that holds the repository's tags, if any (its policy name and pattern).</summary>
    public (string Name, string Pattern)? ImmutableRule(string repository)
    {
        foreach (var (name, pattern, regex) in _immutable)
        {
            if (regex.IsMatch(repository))
            {
                return (name, pattern);
            }
        }
        return null;
    }

    // What anonymous may do (public repositories), any authenticated identity may do too.
    private bool Matches(HashSet<string> subjects, string? subject)
    {
        if (subjects.Contains(Anonymous))
        {
            return true;
        }
        if (subject is null)
        {
            return false;
        }
        if (subjects.Contains(subject) || subjects.Contains("*"))
        {
            return true;
        }
        if (_teamsOf.TryGetValue(subject, out var teams))
        {
            foreach (var team in teams)
            {
                if (subjects.Contains(TeamPrefix + team))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>
    /// Whether every name <paramref name="pattern"/> matches is also matched by <paramref name="admin"/>: the same
    /// pattern, or an admin pattern <c>prefix/**</c> (no other wildcard) and a pattern that starts with <c>prefix/</c>.
    /// </summary>
    public static bool Within(string pattern, string admin)
    {
        if (admin == "**" || pattern == admin)
        {
            return true;
        }
        if (!admin.EndsWith("/**", StringComparison.Ordinal) || admin[..^2].Contains('*'))
        {
            return false;
        }
        return pattern.StartsWith(admin[..^2], StringComparison.Ordinal);
    }

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
        return new Regex(regex.Append(@"\z").ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
    }
}
