using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Auth;

public class AccessPolicyTests
{
    private static readonly AccessPolicy Policy = new(
    [
        new PolicyOptions { Subjects = ["alice"], Repositories = ["team-a/**"], Actions = ["*"] },
        new PolicyOptions { Subjects = ["bob"], Repositories = ["team-a/*"], Actions = ["pull"] },
        new PolicyOptions { Subjects = ["*"], Repositories = ["library/*"], Actions = ["pull"] },
        new PolicyOptions { Subjects = ["anonymous"], Repositories = ["public/**"], Actions = ["pull"] },
        new PolicyOptions { Subjects = ["ci"], Repositories = ["*"], Actions = ["push"] },
    ]);

    [Theory]
    [InlineData("alice", "team-a/app", "pull,push,delete")]
    [InlineData("alice", "team-a/x/y/z", "pull,push,delete")]
    [InlineData("alice", "team-ab/app", "")]
    [InlineData("alice", "team-a", "")]
    [InlineData("bob", "team-a/app", "pull")]
    [InlineData("bob", "team-a/x/y", "")]
    [InlineData("bob", "library/debian", "pull")]
    [InlineData("bob", "library/debian/slim", "")]
    [InlineData(null, "public/tools/jq", "pull")]
    [InlineData("bob", "public/tools/jq", "pull")]
    [InlineData(null, "library/debian", "")]
    [InlineData("ci", "app", "push")]
    [InlineData("ci", "team-a/app", "")]
    [InlineData("mallory", "team-a/app", "")]
    public void Subjects_patterns_and_actions_combine(string? subject, string repository, string actions) =>
        Assert.Equal(actions, string.Join(",", Policy.Allowed(subject, repository)));

    [Fact]
    public void With_no_policy_authenticated_users_may_do_everything_and_anonymous_nothing()
    {
        var open = new AccessPolicy([]);
        Assert.Equal(["pull", "push", "delete"], open.Allowed("anyone", "any/repo"));
        Assert.Empty(open.Allowed(null, "any/repo"));
        Assert.True(open.HasAnyGrant("anyone"));
        Assert.False(open.HasAnyGrant(null));
    }

    [Fact]
    public void Anonymous_is_not_any_authenticated_identity()
    {
        Assert.True(Policy.HasAnyGrant(null));
        Assert.False(new AccessPolicy([new PolicyOptions { Subjects = ["*"], Repositories = ["**"], Actions = ["pull"] }]).HasAnyGrant(null));
    }

    [Fact]
    public void Glob_metacharacters_of_regexes_are_literal()
    {
        var glob = AccessPolicy.Glob("a.b/*");
        Assert.Matches(glob, "a.b/c");
        Assert.DoesNotMatch(glob, "axb/c");
    }

    [Fact]
    public void Invalid_policies_are_reported()
    {
        var options = new AuthOptions { Policies = [new PolicyOptions { Subjects = ["a"], Repositories = ["x"], Actions = ["write"] }] };
        Assert.Contains(options.Validate(), p => p.Contains("Actions", StringComparison.Ordinal));
    }
}

public class StoredPolicyTests
{
    private static readonly AccessPolicy Policy = new(
    [
        new PolicyOptions { Subjects = ["team:devs"], Repositories = ["team-b/**"], Actions = ["pull", "push"] },
        new PolicyOptions { Subjects = ["root"], Repositories = ["**"], Actions = ["*", "admin"] },
        new PolicyOptions { Subjects = ["lead"], Repositories = ["team-b/**"], Actions = ["admin"] },
        new PolicyOptions { Name = "frozen", Repositories = ["releases/**"], ImmutableTags = true },
    ],
    new Dictionary<string, string[]> { ["dave"] = ["devs"], ["robot$ci"] = ["devs", "ops"] });

    [Theory]
    [InlineData("dave", "team-b/app", "pull,push")]
    [InlineData("robot$ci", "team-b/x/y", "pull,push")]
    [InlineData("erin", "team-b/app", "")]
    [InlineData(null, "team-b/app", "")]
    [InlineData("root", "anything/at/all", "pull,push,delete,admin")]
    [InlineData("lead", "team-b/app", "admin")]
    [InlineData("lead", "team-c/app", "")]
    public void Team_members_get_the_teams_grants_and_admin_is_its_own_action(string? subject, string repository, string actions) =>
        Assert.Equal(actions, string.Join(",", Policy.Allowed(subject, repository)));

    [Fact]
    public void Admin_patterns_name_what_a_subject_administers()
    {
        Assert.Equal(["**"], Policy.AdminPatterns("root"));
        Assert.Equal(["team-b/**"], Policy.AdminPatterns("lead"));
        Assert.Empty(Policy.AdminPatterns("dave"));
        Assert.Empty(Policy.AdminPatterns(null));
    }

    [Fact]
    public void With_no_policy_admin_is_never_granted()
    {
        Assert.DoesNotContain("admin", new AccessPolicy([]).Allowed("anyone", "x"));
        Assert.Empty(new AccessPolicy([]).AdminPatterns("anyone"));
    }

    [Theory]
    [InlineData("team-b/app", "team-b/**", true)]
    [InlineData("team-b/**", "team-b/**", true)]
    [InlineData("team-b/*", "team-b/**", true)]
    [InlineData("team-bx/app", "team-b/**", false)]
    [InlineData("**", "team-b/**", false)]
    [InlineData("*", "team-b/**", false)]
    [InlineData("anything/**", "**", true)]
    [InlineData("team-b/app", "team-*/**", false)]
    [InlineData("team-*/**", "team-*/**", true)]
    [InlineData("team-b/app", "team-b/app", true)]
    [InlineData("team-b/other", "team-b/app", false)]
    public void A_pattern_lies_within_an_admin_pattern_only_when_every_name_it_matches_does(string pattern, string admin, bool within) =>
        Assert.Equal(within, AccessPolicy.Within(pattern, admin));

    [Fact]
    public void Immutability_rules_name_their_policy_and_grant_nothing()
    {
        Assert.Equal(("frozen", "releases/**"), Policy.ImmutableRule("releases/app"));
        Assert.Null(Policy.ImmutableRule("team-b/app"));
        Assert.Empty(Policy.Allowed("dave", "releases/app"));
        Assert.Empty(new PolicyOptions { Repositories = ["releases/**"], ImmutableTags = true }.Validate());
        Assert.NotEmpty(new PolicyOptions { Repositories = ["releases/**"] }.Validate());
        Assert.NotEmpty(new PolicyOptions { Subjects = ["x"], Repositories = ["**"], Actions = ["fly"] }.Validate());
    }

    [Fact]
    public void A_glob_never_matches_a_name_with_a_trailing_line_break()
    {
        // .NET's $ also matches before a final newline; globs end in \z. (Names with a line break are refused
        // before any policy is asked: NameTests.)
        Assert.True(AccessPolicy.Glob("team-a/app").IsMatch("team-a/app"));
        Assert.False(AccessPolicy.Glob("team-a/app").IsMatch("team-a/app\n"));
    }
}
