using System.Text;
using System.Text.Json;
using CsCheck;
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

    // Properties (issue 14): a pushed body of any shape is either read as a manifest whose references are exactly the
    // descriptors it holds, or refused with MANIFEST_INVALID — never another exception (which the gateway answers 500).

    private static ManifestPutResult? ParseOrRefuse(byte[] body, string? contentType)
    {
        try
        {
            return new(ManifestParser.Parse(body, contentType, Self));
        }
        catch (RegistryException e)
        {
            Assert.Equal("MANIFEST_INVALID", e.Code.Code);
            return null;
        }
    }

    private static readonly string[] ManifestTypes = [MediaTypes.OciManifest, MediaTypes.DockerManifest];

    private static readonly string[] IndexTypes = [MediaTypes.OciIndex, MediaTypes.DockerManifestList];

    private static readonly Gen<string> ContentType = Gen.OneOf(
        Gen.Const((string)null!), Gen.OneOf([.. ManifestTypes, .. IndexTypes]),
        Gen.OneOf(Gen.Const("application/json"), Gen.Const("text/plain"), Gen.Const(";"), Gen.Const(""), Gen.Const(MediaTypes.OciManifest + "; charset=utf-8")),
        Gen.String);

    private static readonly Gen<string> DigestText = Gen.OneOf(
        Gen.String[Gen.Char["0123456789abcdef"], 64, 64].Select(h => "sha256:" + h),
        Gen.String[Gen.Char["0123456789abcdef"], 128, 128].Select(h => "sha512:" + h));

    /// <summary>A JSON string literal: ordinary, escaped, or with escapes that decode to invalid UTF-16.</summary>
    private static readonly Gen<string> JsonString = Gen.OneOf(
        Gen.String.Select(t => JsonSerializer.Serialize(t)),
        Gen.OneOf([.. ManifestTypes, .. IndexTypes, "application/vnd.oci.empty.v1+json", "sha256:xyz", "", "\u0000"]).Select(t => JsonSerializer.Serialize(t)),
        DigestText.Select(t => JsonSerializer.Serialize(t)),
        Gen.OneOf(Gen.Const("\"\\ud800\""), Gen.Const("\"\\udfff x\""), Gen.Const("\"a\\ud800\\u0041\""), Gen.Const("\"\\u00e9\\n\\t\\/\"")));

    private static readonly Gen<string> JsonNumber = Gen.OneOf(
        Gen.Long.Select(n => n.ToString()), Gen.Int[0, 3].Select(n => n.ToString()), Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        Gen.OneOf(Gen.Const("1e400"), Gen.Const("-1e400"), Gen.Const("99999999999999999999999999"), Gen.Const("2.0"), Gen.Const("-0"), Gen.Const("1E2"), Gen.Const("-1")));

    private static readonly string[] Keys =
        ["schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "annotations", "artifactType", "digest", "size", "urls", "platform", "\\u0073ize", "", "x"];

    private static readonly Gen<string> Key = Gen.OneOf(Gen.OneOf(Keys).Select(k => k.StartsWith('\\') ? "\"" + k + "\"" : JsonSerializer.Serialize(k)), JsonString);

    /// <summary>Any JSON value, up to a few levels deep, with the manifest's own keys over-represented.</summary>
    private static readonly Gen<string> AnyJson = Gen.Recursive<string>((depth, value) => depth >= 4
        ? Gen.OneOf(JsonString, JsonNumber, Gen.OneOf(Gen.Const("true"), Gen.Const("false"), Gen.Const("null")))
        : Gen.Frequency(
            (3, Gen.OneOf(JsonString, JsonNumber, Gen.OneOf(Gen.Const("true"), Gen.Const("false"), Gen.Const("null")))),
            (1, value.Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
            (2, Gen.Select(Key, value).Array[0, 6].Select(members => "{" + string.Join(",", members.Select(m => m.Item1 + ":" + m.Item2)) + "}"))));

    private static string Descriptor(string mediaType, string digest, long size, string extra = "") =>
        $$"""{"mediaType":"{{mediaType}}","digest":"{{digest}}","size":{{size}}{{extra}}}""";

    /// <summary>Valid manifests and indexes of every kind, as a registry client would push them.</summary>
    private static readonly Gen<(string Json, string ContentType, string[] Blobs, string[] Manifests)> ValidManifest = Gen.Select(
        Gen.Bool, Gen.Int[0, 1], DigestText, DigestText.Array[0, 6], Gen.Long[0, long.MaxValue], Gen.Select(Gen.String[Gen.Char.AlphaNumeric, 1, 10], Gen.String).Array[0, 3], Gen.Bool, Gen.Bool)
        .Select(t =>
        {
            var (index, kind, config, digests, size, annotations, withSubject, withType) = t;
            var mediaType = index ? IndexTypes[kind] : ManifestTypes[kind];
            var members = new List<string> { "\"schemaVersion\":2" };
            if (withType)
            {
                members.Add($"\"mediaType\":\"{mediaType}\"");
            }
            if (index)
            {
                members.Add("\"manifests\":[" + string.Join(",", digests.Select(d => Descriptor(MediaTypes.OciManifest, d, size, ",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}"))) + "]");
            }
            else
            {
                members.Add("\"config\":" + Descriptor("application/vnd.oci.image.config.v1+json", config, size));
                members.Add("\"layers\":[" + string.Join(",", digests.Select(d => Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", d, size))) + "]");
            }
            if (withSubject)
            {
                members.Add("\"subject\":" + Descriptor(MediaTypes.OciManifest, config, 1));
            }
            var unique = annotations.DistinctBy(a => a.Item1).ToArray();
            members.Add("\"annotations\":{" + string.Join(",", unique.Select(a => JsonSerializer.Serialize(a.Item1) + ":" + JsonSerializer.Serialize(a.Item2))) + "}");
            var json = "{" + string.Join(",", members) + "}";
            string[] blobs = index ? [] : [.. new[] { config }.Concat(digests).Distinct()];
            string[] manifests = index ? [.. digests.Distinct()] : [];
            return (json, mediaType, blobs, manifests);
        });

    [Fact]
    public void Valid_manifests_and_indexes_are_read_with_exactly_their_references() =>
        ValidManifest.Sample(m =>
        {
            var put = ManifestParser.Parse(Encoding.UTF8.GetBytes(m.Json), m.ContentType, Self);
            Assert.Equal(m.ContentType, put.MediaType);
            Assert.Equal(m.Blobs, put.Blobs.Select(d => d.ToString()));
            Assert.Equal(m.Manifests, put.Manifests.Select(d => d.ToString()));
        }, iter: 3_000);

    [Fact]
    public void Any_bytes_are_read_as_a_manifest_or_refused_as_manifest_invalid() =>
        Gen.Select(Gen.OneOf(Gen.Byte.Array[0, 300], Gen.String.Select(Encoding.UTF8.GetBytes)), ContentType)
            .Sample((body, type) => ParseOrRefuse(body, type), iter: 20_000);

    [Fact]
    public void Any_json_is_read_as_a_manifest_or_refused_as_manifest_invalid() =>
        Gen.Select(AnyJson, ContentType).Sample((json, type) => ParseOrRefuse(Encoding.UTF8.GetBytes(json), type), iter: 20_000);

    [Fact]
    public void A_valid_manifest_with_any_member_replaced_by_any_json_is_read_consistently_or_refused()
    {
        // Replace one member's value of a valid manifest with any JSON value, or repeat a member (a duplicate key).
        var mutated = Gen.Select(ValidManifest, Gen.OneOf(Keys), AnyJson, Gen.Bool).Select(t =>
        {
            var (m, key, value, duplicate) = t;
            using var doc = JsonDocument.Parse(m.Json);
            var members = doc.RootElement.EnumerateObject().Select(p => (Name: JsonSerializer.Serialize(p.Name), Value: p.Value.GetRawText())).ToList();
            var name = JsonSerializer.Serialize(key);
            var at = members.FindIndex(p => p.Name == name);
            if (at >= 0 && !duplicate)
            {
                members[at] = (name, value);
            }
            else
            {
                members.Add((name, value));
            }
            return ("{" + string.Join(",", members.Select(p => p.Name + ":" + p.Value)) + "}", m.ContentType);
        });
        Gen.Select(mutated, ContentType).Sample((m, other) =>
        {
            var body = Encoding.UTF8.GetBytes(m.Item1);
            if (ParseOrRefuse(body, m.Item2) is { } read)
            {
                Assert.True(MediaTypes.IsManifest(read.Value.MediaType));
                Assert.All(read.Value.Blobs.Concat(read.Value.Manifests), d => Assert.True(Digest.IsSupportedAlgorithm(d.Algorithm)));
            }
            ParseOrRefuse(body, other);
        }, iter: 10_000);
    }

    [Theory]
    [InlineData(10_000)]
    [InlineData(65)]
    public void Deep_nesting_is_manifest_invalid(int depth)
    {
        foreach (var json in new[] { new string('[', depth) + new string(']', depth), "{\"schemaVersion\":2,\"annotations\":" + string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth + 1) })
        {
            var e = Assert.Throws<RegistryException>(() => Parse(json));
            Assert.Equal("MANIFEST_INVALID", e.Code.Code);
        }
    }

    [Theory]
    [InlineData("1e400")]
    [InlineData("99999999999999999999")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("\"3\"")]
    public void A_descriptor_size_that_is_not_a_non_negative_64_bit_integer_is_manifest_invalid(string size)
    {
        var e = Assert.Throws<RegistryException>(() => Parse($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{D1}}","size":{{size}}},"layers":[]}
            """));
        Assert.Equal("MANIFEST_INVALID", e.Code.Code);
    }

    [Theory]
    [InlineData("config")]
    [InlineData("layers")]
    [InlineData("mediaType")]
    [InlineData("digest")]
    public void A_repeated_member_is_manifest_invalid_since_readers_disagree_on_which_one_counts(string key)
    {
        // Go's encoding/json keeps the last, other parsers the first: a client could verify one config and run another.
        var config = $$"""{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{D1}}","size":2}""";
        var json = key switch
        {
            "config" => $$"""{"schemaVersion":2,"config":{{config}},"layers":[],"config":{"digest":"{{D2}}","size":1} }""",
            "layers" => $$"""{"schemaVersion":2,"config":{{config}},"layers":[],"layers":[{"digest":"{{D2}}","size":1}]}""",
            "mediaType" => $$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{{config}},"layers":[],"mediaType":"{{MediaTypes.OciIndex}}"}""",
            _ => $$"""{"schemaVersion":2,"config":{"digest":"{{D1}}","size":2,"digest":"{{D2}}"},"layers":[]}""",
        };
        var e = Assert.Throws<RegistryException>(() => Parse(json));
        Assert.Equal("MANIFEST_INVALID", e.Code.Code);
    }
}
