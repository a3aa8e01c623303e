using CsCheck;
using Wharf.Gateway.Distribution;

namespace Wharf.Tests.Unit.Distribution;

public class RouteTests
{
    [Theory]
    [InlineData("", RouteKind.Base, "", "")]
    [InlineData("_catalog", RouteKind.Catalog, "", "")]
    [InlineData("library/ubuntu/tags/list", RouteKind.Tags, "library/ubuntu", "")]
    [InlineData("a/manifests/latest", RouteKind.Manifest, "a", "latest")]
    [InlineData("a/manifests/b/manifests/c", RouteKind.Manifest, "a/manifests/b", "c")]
    [InlineData("a/blobs/uploads/", RouteKind.UploadStart, "a", "")]
    [InlineData("a/blobs/uploads/abc", RouteKind.Upload, "a", "abc")]
    [InlineData("x/blobs/y/blobs/sha256:00", RouteKind.Blob, "x/blobs/y", "sha256:00")]
    [InlineData("a/referrers/sha256:00", RouteKind.Referrers, "a", "sha256:00")]
    [InlineData("a/unknown", RouteKind.Unknown, "", "")]
    public void Paths_map_to_the_spec_endpoints(string path, RouteKind kind, string name, string argument)
    {
        var route = Route.Parse(path);
        Assert.Equal(kind, route.Kind);
        Assert.Equal(name, route.Name);
        Assert.Equal(argument, route.Argument);
    }

    [Theory]
    [InlineData("bytes=0-9", 100, ByteRange.Result.Satisfiable, 0, 9)]
    [InlineData("bytes=90-", 100, ByteRange.Result.Satisfiable, 90, 99)]
    [InlineData("bytes=-10", 100, ByteRange.Result.Satisfiable, 90, 99)]
    [InlineData("bytes=-1000", 100, ByteRange.Result.Satisfiable, 0, 99)]
    [InlineData("bytes=50-1000", 100, ByteRange.Result.Satisfiable, 50, 99)]
    [InlineData("bytes=100-", 100, ByteRange.Result.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", 100, ByteRange.Result.Unsatisfiable, 0, 0)]
    [InlineData("bytes=5-2", 100, ByteRange.Result.Unsatisfiable, 0, 0)]
    [InlineData("items=0-1", 100, ByteRange.Result.Ignored, 0, 0)]
    [InlineData("bytes=0-1,5-6", 100, ByteRange.Result.Ignored, 0, 0)]
    public void Byte_ranges_follow_rfc_9110(string header, long size, ByteRange.Result expected, long start, long end)
    {
        var result = ByteRange.Parse(header, size, out var s, out var e);
        Assert.Equal(expected, result);
        if (expected == ByteRange.Result.Satisfiable)
        {
            Assert.Equal((start, end), (s, e));
        }
    }

    // Properties (issue 14): any header or path is parsed into something consistent or refused, never an exception;
    // well-formed values from the grammars are always understood as the grammar says.

    private static readonly Gen<string> Number = Gen.OneOf(
        Gen.Long[0, 2_000].Select(n => n.ToString()), Gen.Long[0, long.MaxValue].Select(n => n.ToString()),
        Gen.Const("0"), Gen.Const("9223372036854775807"), Gen.Const("9223372036854775808"), Gen.Const("99999999999999999999999"), Gen.Const("-1"), Gen.Const("+1"), Gen.Const(" 1"),
        Gen.Const("0x10"), Gen.Const("1e3"), Gen.Const("١"), Gen.Const(""));

    private static readonly Gen<string> RangeLike = Gen.OneOf(
        Gen.String,
        Gen.String[Gen.Char["bytes=0123456789-, */"], 0, 30],
        Gen.Select(Gen.OneOf(Gen.Const("bytes="), Gen.Const("bytes "), Gen.Const("BYTES="), Gen.Const(""), Gen.Const("items=")),
            Number, Gen.OneOf(Gen.Const("-"), Gen.Const("--"), Gen.Const(""), Gen.Const("–")), Number,
            Gen.OneOf(Gen.Const(""), Gen.Const("/100"), Gen.Const("/*"), Gen.Const(",0-1"), Gen.Const("\r\n")),
            (unit, a, dash, b, tail) => unit + a + dash + b + tail));

    [Fact]
    public void Any_range_header_is_satisfiable_inside_the_blob_or_unsatisfiable_or_ignored() =>
        Gen.Select(RangeLike, Gen.OneOf(Gen.Long[0, 3_000], Gen.Long[0, long.MaxValue])).Sample((header, size) =>
        {
            var result = ByteRange.Parse(header, size, out var start, out var end);
            if (result == ByteRange.Result.Satisfiable)
            {
                Assert.InRange(start, 0, end);
                Assert.InRange(end, start, size - 1);
            }
        }, iter: 20_000);

    [Fact]
    public void Well_formed_single_ranges_are_answered_as_rfc_9110_says() =>
        Gen.Select(Gen.Long[0, 3_000], Gen.Long[0, 3_000], Gen.Long[0, 3_000], Gen.Int[0, 2]).Sample((size, a, b, form) =>
        {
            var (header, expected, s, e) = form switch
            {
                0 => ($"bytes={a}-{b}", b < a || a >= size ? ByteRange.Result.Unsatisfiable : ByteRange.Result.Satisfiable, a, Math.Min(b, size - 1)),
                1 => ($"bytes={a}-", a >= size ? ByteRange.Result.Unsatisfiable : ByteRange.Result.Satisfiable, a, size - 1),
                _ => ($"bytes=-{b}", b == 0 || size == 0 ? ByteRange.Result.Unsatisfiable : ByteRange.Result.Satisfiable, Math.Max(0, size - b), size - 1),
            };
            var result = ByteRange.Parse(header, size, out var start, out var end);
            Assert.Equal(expected, result);
            if (expected == ByteRange.Result.Satisfiable)
            {
                Assert.Equal((s, e), (start, end));
            }
        }, iter: 20_000);

    [Fact]
    public void Any_content_range_is_refused_or_a_non_empty_range_that_round_trips() =>
        RangeLike.Sample(text =>
        {
            if (ContentRange.TryParse(text, out var start, out var end))
            {
                Assert.InRange(start, 0, end);
                Assert.True(checked(end - start + 1) > 0, $"{text}: the length of {start}-{end} must fit a long");
                Assert.True(ContentRange.TryParse($"{start}-{end}", out var s2, out var e2));
                Assert.Equal((start, end), (s2, e2));
            }
        }, iter: 20_000);

    [Fact]
    public void Content_ranges_in_the_spec_form_are_accepted() =>
        Gen.Select(Gen.Long[0, long.MaxValue - 1], Gen.Long[0, long.MaxValue - 1]).Sample((a, b) =>
        {
            var (start, end) = (Math.Min(a, b), Math.Max(a, b));
            Assert.True(ContentRange.TryParse($"{start}-{end}", out var s, out var e));
            Assert.Equal((start, end), (s, e));
        }, iter: 5_000);

    private static readonly Gen<string> Component = Gen.OneOf(
        Gen.String[Gen.Char["abcz09"], 1, 6], Gen.Select(Gen.String[Gen.Char["abcz09"], 1, 4], Gen.OneOf(Gen.Const("."), Gen.Const("__"), Gen.Const("--")), Gen.String[Gen.Char["abcz09"], 1, 4], (x, sep, y) => x + sep + y),
        Gen.OneOf(Gen.Const("blobs"), Gen.Const("uploads"), Gen.Const("manifests"), Gen.Const("tags"), Gen.Const("list"), Gen.Const("referrers"), Gen.Const("v2")));

    private static readonly Gen<string> RepositoryName = Component.Array[1, 5].Select(c => string.Join('/', c));

    private static readonly Gen<string> Digest64 = Gen.String[Gen.Char["0123456789abcdef"], 64, 64].Select(h => "sha256:" + h);

    private static readonly Gen<string> Tag = Gen.OneOf(Gen.String[Gen.Char["aZ09_.-"], 1, 20].Where(t => t[0] is not ('.' or '-')),
        Gen.OneOf(Gen.Const("list"), Gen.Const("uploads"), Gen.Const("blobs"), Gen.Const("latest")));

    [Fact]
    public void Every_endpoint_of_every_valid_name_is_routed_to_that_name() =>
        Gen.Select(RepositoryName, Tag, Digest64, Gen.String[Gen.Char["0123456789abcdef"], 32, 32]).Sample((name, tag, digest, id) =>
        {
            Assert.Equal(new Route(RouteKind.Tags, name), Route.Parse($"{name}/tags/list"));
            Assert.Equal(new Route(RouteKind.Manifest, name, tag), Route.Parse($"{name}/manifests/{tag}"));
            Assert.Equal(new Route(RouteKind.Manifest, name, digest), Route.Parse($"{name}/manifests/{digest}"));
            Assert.Equal(new Route(RouteKind.Blob, name, digest), Route.Parse($"{name}/blobs/{digest}"));
            Assert.Equal(new Route(RouteKind.UploadStart, name), Route.Parse($"{name}/blobs/uploads/"));
            Assert.Equal(new Route(RouteKind.Upload, name, id), Route.Parse($"{name}/blobs/uploads/{id}"));
            Assert.Equal(new Route(RouteKind.Referrers, name, digest), Route.Parse($"{name}/referrers/{digest}"));
        }, iter: 5_000);

    [Fact]
    public void Any_path_routes_somewhere_and_a_routed_name_and_argument_are_pieces_of_it() =>
        Gen.OneOf(Gen.String, Gen.String[Gen.Char["ab/._-:%\n"], 0, 60],
                Gen.Select(RepositoryName, Gen.OneOf(Gen.Const("/manifests/"), Gen.Const("/blobs/"), Gen.Const("/blobs/uploads/"), Gen.Const("/tags/list"), Gen.Const("/referrers/"), Gen.Const("//")), Gen.String[Gen.Char["ab/:\n\r"], 0, 10], (n, e, a) => n + e + a))
            .Sample(path =>
            {
                var route = Route.Parse(path);
                if (route.Kind is not (RouteKind.Base or RouteKind.Catalog or RouteKind.Unknown))
                {
                    Assert.NotEmpty(route.Name);
                    Assert.StartsWith(route.Name + "/", path);
                    Assert.EndsWith(route.Argument, path);
                    Assert.DoesNotContain('/', route.Argument);
                }
            }, iter: 20_000);
}
