using System.Text;
using Wharf.Contracts.Oci;
using Wharf.Gateway.Distribution;

namespace Wharf.Tests.Unit.Distribution;

public class ManifestParserTests
{
    private static readonly string D1 = "sha256:" + new string('1', 64);
    private static readonly string D2 = "sha256:" + new string('2', 64);
    private static readonly string D3 = "sha256:" + new string('3', 64);
    private static readonly Digest Self = Digest.Parse("sha256:" + new string('f', 64));

    private static ManifestPutResult Parse(string json, string? contentType = null) =>
        new(ManifestParser.Parse(Encoding.UTF8.GetBytes(json), contentType, Self));

    private sealed record ManifestPutResult(Wharf.Contracts.Grains.ManifestPut Value);

    [Fact]
    public void An_image_manifest_references_its_config_and_layers()
    {
        var m = Parse($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{D1}}","size":2},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{{D2}}","size":3}] }
            """).Value;
        Assert.Equal(MediaTypes.OciManifest, m.MediaType);
        Assert.Equal([Digest.Parse(D1), Digest.Parse(D2)], m.Blobs);
        Assert.Empty(m.Manifests);
        Assert.Equal("application/vnd.oci.image.config.v1+json", m.ArtifactType);
    }

    [Fact]
    public void An_index_references_its_child_manifests_and_subject()
    {
        var m = Parse($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/x-sbom",
             "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{D1}}","size":2}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{D3}}","size":9} }
            """).Value;
        Assert.Equal([Digest.Parse(D1)], m.Manifests);
        Assert.Equal(Digest.Parse(D3), m.Subject);
        Assert.Equal("application/x-sbom", m.ArtifactType);
    }

    [Fact]
    public void The_media_type_may_come_from_content_type_alone()
    {
        var m = Parse($$$"""{"schemaVersion":2,"config":{"digest":"{{{D1}}}","size":2},"layers":[]}""", MediaTypes.DockerManifest).Value;
        Assert.Equal(MediaTypes.DockerManifest, m.MediaType);
    }

    [Fact]
    public void Foreign_layers_with_urls_are_not_required_in_the_registry()
    {
        var m = Parse($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"digest":"{{D1}}","size":2},
             "layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{{D2}}","size":3,"urls":["https://example.invalid/l"]}] }
            """).Value;
        Assert.Equal([Digest.Parse(D1)], m.Blobs);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"schemaVersion":1}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:xyz","size":1},"layers":[]}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}""")]
    [InlineData("""{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}""")]
    public void Malformed_manifests_are_manifest_invalid(string json)
    {
        var e = Assert.Throws<RegistryException>(() => Parse(json));
        Assert.Equal("MANIFEST_INVALID", e.Code.Code);
    }

    [Fact]
    public void A_content_type_that_contradicts_the_body_is_invalid()
    {
        var e = Assert.Throws<RegistryException>(() => Parse(
            """{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}""", MediaTypes.OciManifest));
        Assert.Equal("MANIFEST_INVALID", e.Code.Code);
    }
}
