using Wharf.Contracts.Oci;

namespace Wharf.Tests.Unit.Oci;

public class NamesAndDigestTests
{
    [Theory]
    [InlineData("library/ubuntu", true)]
    [InlineData("a", true)]
    [InlineData("a.b_c__d-e--f/g", true)]
    [InlineData("Upper", false)]
    [InlineData("trailing/", false)]
    [InlineData("/leading", false)]
    [InlineData("a//b", false)]
    [InlineData("a..b", false)]
    [InlineData("a___b", false)]
    [InlineData("", false)]
    public void Repository_names_follow_the_spec_grammar(string name, bool valid) =>
        Assert.Equal(valid, Names.IsValidName(name));

    [Theory]
    [InlineData("latest", true)]
    [InlineData("v1.2.3-rc_1", true)]
    [InlineData("_x", true)]
    [InlineData(".hidden", false)]
    [InlineData("-dash", false)]
    [InlineData("has/slash", false)]
    public void Tags_follow_the_spec_grammar(string tag, bool valid) => Assert.Equal(valid, Names.IsValidTag(tag));

    [Fact]
    public void A_tag_longer_than_128_characters_is_invalid()
    {
        Assert.True(Names.IsValidTag(new string('a', 128)));
        Assert.False(Names.IsValidTag(new string('a', 129)));
    }

    [Theory]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", true)]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false)]
    [InlineData("sha256:e3b0", false)]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", false)]
    [InlineData("sha256", false)]
    [InlineData("", false)]
    public void Digests_are_parsed_strictly(string text, bool valid) => Assert.Equal(valid, Digest.TryParse(text, out _));

    [Fact]
    public void Compute_matches_the_well_known_empty_digest() =>
        Assert.Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Digest.Compute("sha256", []).ToString());
}
