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
