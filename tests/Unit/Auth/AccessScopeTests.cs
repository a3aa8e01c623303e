using CsCheck;
using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Auth;

public class AccessScopeTests
{
    [Theory]
    [InlineData("repository:samalba/my-app:pull,push", "repository", "samalba/my-app", "pull,push")]
    [InlineData("repository:localhost:5000/app:pull", "repository", "localhost:5000/app", "pull")]
    [InlineData("repository(plugin):team/app:pull", "repository", "team/app", "pull")]
    [InlineData("registry:catalog:*", "registry", "catalog", "*")]
    [InlineData("repository:app:pull,pull", "repository", "app", "pull")]
    public void Scopes_split_at_the_first_and_last_colon(string text, string type, string name, string actions)
    {
        Assert.True(AccessScope.TryParse(text, out var scope));
        Assert.Equal((type, name, actions), (scope.Type, scope.Name, string.Join(",", scope.Actions)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("repository")]
    [InlineData("repository:app")]
    [InlineData("repository::pull")]
    [InlineData(":app:pull")]
    [InlineData("repository:app:")]
    [InlineData("repository:app:pull,,push")]
    [InlineData("repo sitory:app:pull")]
    [InlineData("repository(:app:pull")]
    [InlineData("repository:my app:pull")]
    public void Malformed_scopes_are_refused(string text) => Assert.False(AccessScope.TryParse(text, out _));

    [Fact]
    public void Several_scopes_come_repeated_or_space_separated()
    {
        Assert.True(AccessScope.TryParseAll(["repository:a:pull repository:b:push", "registry:catalog:*"], out var scopes));
        Assert.Equal(["repository:a:pull", "repository:b:push", "registry:catalog:*"], scopes.Select(s => s.ToString()));
        Assert.False(AccessScope.TryParseAll(["repository:a:pull nonsense"], out _));
    }

    [Fact]
    public void Any_string_parses_or_is_refused_without_throwing_and_a_parsed_scope_round_trips() =>
        Gen.OneOf(Gen.String, Gen.String[Gen.Char["repository:/,*()pul a-z0-9"], 0, 40])
            .Sample(text =>
            {
                if (AccessScope.TryParse(text, out var scope))
                {
                    Assert.True(AccessScope.TryParse(scope.ToString(), out var again));
                    Assert.Equal(scope.ToString(), again.ToString());
                }
            }, iter: 20_000);
}
