using System.Text;
using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Auth;

public class BasicCredentialsTests
{
    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    [Theory]
    [InlineData("alice:pw", "alice", "pw")]
    [InlineData("alice:pw:with:colons", "alice", "pw:with:colons")]
    [InlineData("alice:", "alice", "")]
    public void Basic_headers_split_at_the_first_colon(string pair, string user, string password)
    {
        Assert.True(RegistryAuthFilter.TryBasic("Basic " + B64(pair), out var u, out var p));
        Assert.Equal((user, password), (u, p));
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bearer abc")]
    [InlineData("Basic !!!")]
    [InlineData("Basic bm9jb2xvbg==")] // "nocolon"
    public void Other_or_malformed_headers_are_not_credentials(string header) =>
        Assert.False(RegistryAuthFilter.TryBasic(header, out _, out _));

    [Fact]
    public void Htpasswd_keeps_bcrypt_entries_and_skips_the_rest()
    {
        var users = HtpasswdFile.Parse("# c\nalice:$2y$05$abc\nbob:{SHA}xyz\n\nbroken\ncarol:$2b$10$def\n", out var skipped);
        Assert.Equal(["alice", "carol"], users.Keys.Order());
        Assert.Equal(["bob", "(malformed line)"], skipped);
    }
}
