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
}
