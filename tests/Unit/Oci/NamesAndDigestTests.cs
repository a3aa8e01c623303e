using CsCheck;
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

    // Properties (issue 14, "Abuse and hostile input"): every string is either a value that round-trips or a refusal,
    // and every value generated from the distribution-spec grammar is accepted. The oracles below are written from the
    // grammar by hand, independently of the regexes under test.

    private static readonly Gen<string> Alnum = Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"], 1, 8];

    private static readonly Gen<string> Separator = Gen.OneOf(Gen.Const("."), Gen.Const("_"), Gen.Const("__"), Gen.Int[1, 3].Select(n => new string('-', n)));

    /// <summary>A path component from the spec: <c>[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*</c>.</summary>
    private static readonly Gen<string> Component =
        Gen.Select(Alnum, Gen.Select(Separator, Alnum, (s, a) => s + a).Array[0, 3], (first, rest) => first + string.Concat(rest));

    private static readonly Gen<string> GrammarName = Component.Array[1, 4].Select(c => string.Join('/', c)).Where(n => n.Length <= Names.MaxNameLength);

    private static readonly Gen<string> GrammarTag = Gen.Select(
        Gen.Char["abcxyzABCXYZ0189_"], Gen.String[Gen.Char["abcxyzABCXYZ0189._-"], 0, 127], (c, rest) => c + rest);

    /// <summary>Strings near the grammar (its alphabet, a few foreign characters, line ends) and arbitrary ones.</summary>
    private static Gen<string> Hostile(string alphabet, int max) => Gen.OneOf(
        Gen.String[Gen.Char[alphabet + "A/.-_:\n\r \t\0é%"], 0, max],
        Gen.String,
        Gen.Select(Gen.String[Gen.Char[alphabet], 1, max], Gen.OneOf(Gen.Const("\n"), Gen.Const("\r\n"), Gen.Const(" "), Gen.Const("\0")), (s, end) => s + end));

    private static bool IsNameByGrammar(string name) =>
        name.Length is > 0 and <= Names.MaxNameLength && name.Split('/').All(IsComponentByGrammar);

    private static bool IsComponentByGrammar(string component)
    {
        var i = 0;
        while (true)
        {
            var start = i;
            while (i < component.Length && component[i] is (>= 'a' and <= 'z') or (>= '0' and <= '9'))
            {
                i++;
            }
            if (i == start)
            {
                return false;
            }
            if (i == component.Length)
            {
                return true;
            }
            start = i;
            while (i < component.Length && component[i] is '.' or '_' or '-')
            {
                i++;
            }
            var separator = component[start..i];
            if (separator.Length == 0 || !(separator is "." or "_" or "__" || separator.All(c => c == '-')))
            {
                return false;
            }
        }
    }

    private static bool IsTagByGrammar(string tag) =>
        tag.Length is > 0 and <= 128
        && tag[0] is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_'
        && tag.All(c => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '.' or '-');

    [Fact]
    public void Names_generated_from_the_spec_grammar_are_accepted() =>
        GrammarName.Sample(name => Assert.True(Names.IsValidName(name), name), iter: 5_000);

    [Fact]
    public void Any_string_is_a_name_exactly_when_the_grammar_says_so() =>
        Gen.OneOf(Hostile("abz09", 40), GrammarName, GrammarName.Select(n => n + "\n"))
            .Sample(text => Assert.Equal(IsNameByGrammar(text), Names.IsValidName(text)), iter: 20_000);

    [Fact]
    public void Tags_generated_from_the_spec_grammar_are_accepted() =>
        GrammarTag.Sample(tag => Assert.True(Names.IsValidTag(tag), tag), iter: 5_000);

    [Fact]
    public void Any_string_is_a_tag_exactly_when_the_grammar_says_so() =>
        Gen.OneOf(Hostile("aZ9._-", 140), GrammarTag, GrammarTag.Select(t => t + "\n"))
            .Sample(text => Assert.Equal(IsTagByGrammar(text), Names.IsValidTag(text)), iter: 20_000);

    private static readonly Gen<string> GrammarDigest = Gen.OneOf(
        Gen.String[Gen.Char["0123456789abcdef"], 64, 64].Select(h => "sha256:" + h),
        Gen.String[Gen.Char["0123456789abcdef"], 128, 128].Select(h => "sha512:" + h));

    [Fact]
    public void Digests_of_the_registered_algorithms_are_accepted_and_round_trip() =>
        GrammarDigest.Sample(text =>
        {
            var digest = Digest.Parse(text);
            Assert.Equal(text, digest.ToString());
            Assert.Equal(Digest.HexLength(digest.Algorithm), digest.Hex.Length);
        }, iter: 5_000);

    [Fact]
    public void Any_string_parses_to_a_digest_that_round_trips_or_is_refused_with_a_format_exception()
    {
        // Near misses: one character changed, cut, lengthened, upper-cased, or the algorithm swapped.
        var nearMiss = Gen.Select(GrammarDigest, Gen.Int[0, 200], Gen.Char, Gen.Int[0, 6], (d, i, c, kind) =>
        {
            var at = Math.Min(i, d.Length - 1);
            return kind switch
            {
                0 => d[..at] + c + d[(at + 1)..],
                1 => d[..at],
                2 => d + c,
                3 => d.ToUpperInvariant(),
                4 => d.StartsWith("sha256:") ? "sha512:" + d[7..] : "sha256:" + d[7..],
                5 => d.Replace(":", "+b64u:"),
                _ => d + "\n",
            };
        });
        Gen.OneOf(Gen.String, Hostile("sha256:0123456789abcdef", 140), nearMiss).Sample(text =>
        {
            if (Digest.TryParse(text, out var digest))
            {
                Assert.Equal(text, digest.Value.ToString());
                Assert.True(Digest.IsSupportedAlgorithm(digest.Value.Algorithm));
                Assert.All(digest.Value.Hex, c => Assert.True(c is (>= '0' and <= '9') or (>= 'a' and <= 'f')));
                Assert.Equal(digest, Digest.Parse(text));
            }
            else
            {
                Assert.Throws<FormatException>(() => Digest.Parse(text));
            }
        }, iter: 20_000);
    }
}
