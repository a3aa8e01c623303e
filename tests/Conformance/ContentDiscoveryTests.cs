using System.Net;
using System.Text.Json.Nodes;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>spec.md "Content Discovery": tags, the catalog, and referrers.</summary>
[Collection(RegistryCollection.Name)]
public sealed class ContentDiscoveryTests(RegistryFixture registry)
{
    private RegistryClient Client => registry.Client;

    private static string[] Strings(JsonNode? array) => [.. array!.AsArray().Select(n => n!.GetValue<string>())];

    private async Task<(string Name, string Digest)> RepositoryWithTagsAsync(params string[] tags)
    {
        var name = UniqueName("tags");
        var image = await Client.PushImageAsync(name, null);
        foreach (var tag in tags)
        {
            await Client.PushManifestAsync(name, tag, image.Manifest);
        }
        return (name, image.Digest);
    }

    [Fact(Timeout = 30000)]
    public async Task Tags_list_returns_every_tag_in_lexical_order()
    {
        var (name, _) = await RepositoryWithTagsAsync("v2", "latest", "V1", "a-1", "1.0");
        using var response = await Client.GetAsync($"/v2/{name}/tags/list");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await JsonAsync(response);
        Assert.Equal(name, json["name"]!.GetValue<string>());
        Assert.Equal(["1.0", "V1", "a-1", "latest", "v2"], Strings(json["tags"]));
    }

    [Fact(Timeout = 30000)]
    public async Task Tags_list_pages_with_n_and_last_and_a_next_link()
    {
        var (name, _) = await RepositoryWithTagsAsync("t1", "t2", "t3", "t4", "t5");
        using var first = await Client.GetAsync($"/v2/{name}/tags/list?n=2");
        Assert.Equal(["t1", "t2"], Strings((await JsonAsync(first))["tags"]));
        var link = Header(first, "Link");
        Assert.Contains("rel=\"next\"", link);
        var next = link[(link.IndexOf('<') + 1)..link.IndexOf('>')];
        Assert.StartsWith($"/v2/{name}/tags/list?", next);

        using var second = await Client.GetAsync(next);
        Assert.Equal(["t3", "t4"], Strings((await JsonAsync(second))["tags"]));

        using var last = await Client.GetAsync($"/v2/{name}/tags/list?n=2&last=t4");
        Assert.Equal(["t5"], Strings((await JsonAsync(last))["tags"]));
        Assert.False(last.Headers.Contains("Link"));

        using var afterOnly = await Client.GetAsync($"/v2/{name}/tags/list?last=t2");
        Assert.Equal(["t3", "t4", "t5"], Strings((await JsonAsync(afterOnly))["tags"]));
    }

    [Fact(Timeout = 30000)]
    public async Task Tags_list_with_n_zero_returns_an_empty_list_without_link()
    {
        var (name, _) = await RepositoryWithTagsAsync("t1", "t2");
        using var response = await Client.GetAsync($"/v2/{name}/tags/list?n=0");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(Strings((await JsonAsync(response))["tags"]));
        Assert.False(response.Headers.Contains("Link"));
    }

    [Fact(Timeout = 30000)]
    public async Task Tags_list_of_a_repository_without_tags_is_empty()
    {
        var name = UniqueName("untagged");
        await Client.PushImageAsync(name, null);
        using var response = await Client.GetAsync($"/v2/{name}/tags/list");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(Strings((await JsonAsync(response))["tags"]));
    }

    [Fact(Timeout = 30000)]
    public async Task Catalog_pages_with_n_and_last_and_a_next_link()
    {
        // The registry is shared: page from a prefix only this test uses.
        var prefix = $"catalog-{Guid.NewGuid().ToString("N")[..10]}";
        string[] names = [$"{prefix}/a", $"{prefix}/b", $"{prefix}/c"];
        foreach (var n in names.Reverse())
        {
            await Client.PushBlobAsync(n, RandomBytes(10));
        }
        using var first = await Client.GetAsync($"/v2/_catalog?n=2&last={prefix}");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(names[..2], Strings((await JsonAsync(first))["repositories"]));
        var link = Header(first, "Link");
        Assert.Contains("rel=\"next\"", link);
        var next = link[(link.IndexOf('<') + 1)..link.IndexOf('>')];
        Assert.StartsWith("/v2/_catalog?", next);

        using var second = await Client.GetAsync(next);
        var rest = Strings((await JsonAsync(second))["repositories"]);
        Assert.Equal(names[2], rest[0]);
    }

    [Fact(Timeout = 30000)]
    public async Task Catalog_lists_repositories_in_lexical_order()
    {
        var name = UniqueName("catalog");
        await Client.PushBlobAsync(name, RandomBytes(10));
        using var response = await Client.GetAsync("/v2/_catalog?n=10000");
        var repositories = Strings((await JsonAsync(response))["repositories"]);
        Assert.Contains(name, repositories);
        Assert.Equal(repositories.Order(StringComparer.Ordinal), repositories);
    }

    [Fact(Timeout = 30000)]
    public async Task Catalog_with_n_zero_returns_an_empty_list_without_link()
    {
        await Client.PushBlobAsync(UniqueName("catalog"), RandomBytes(10));
        using var response = await Client.GetAsync("/v2/_catalog?n=0");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(Strings((await JsonAsync(response))["repositories"]));
        Assert.False(response.Headers.Contains("Link"));
    }

    [Fact(Timeout = 30000)]
    public async Task Index_with_a_subject_is_listed_as_a_referrer_without_artifactType()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var child = await Client.PushImageAsync(name, null);
        var index = JsonNode.Parse(Index([(child.Digest, child.Manifest.Length, OciManifest, "linux", "amd64")]))!;
        index["subject"] = new JsonObject { ["mediaType"] = OciManifest, ["digest"] = subject.Digest, ["size"] = subject.Manifest.Length };
        var body = System.Text.Encoding.UTF8.GetBytes(index.ToJsonString());
        using var put = await Client.PutManifestAsync(name, Sha256(body), body, OciIndex);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(subject.Digest, Header(put, "OCI-Subject"));
        using var response = await Client.GetAsync($"/v2/{name}/referrers/{subject.Digest}");
        var referrer = Assert.Single((await JsonAsync(response))["manifests"]!.AsArray())!;
        Assert.Equal(OciIndex, referrer["mediaType"]!.GetValue<string>());
        // spec.md "Listing Referrers": an index without artifactType lists without one.
        Assert.Null(referrer["artifactType"]);
    }

    [Fact(Timeout = 30000)]
    public async Task Manifest_put_with_a_subject_returns_the_OCI_Subject_header()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var manifest = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.sig", configMediaType: "application/vnd.oci.empty.v1+json");
        using var put = await Client.PutManifestAsync(name, Sha256(manifest), manifest, OciManifest);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(subject.Digest, Header(put, "OCI-Subject"));
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_returns_an_image_index_of_the_manifests_that_refer_to_the_subject()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var sbom = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.sbom", annotations: new() { ["org.example.kind"] = "sbom" });
        var sig = ImageManifest(config, [], subject: subject.Digest, configMediaType: "application/vnd.example.sig.config");
        await Client.PushManifestAsync(name, Sha256(sbom), sbom);
        await Client.PushManifestAsync(name, Sha256(sig), sig);
        await Client.PushImageAsync(name, "unrelated");

        using var response = await Client.GetAsync($"/v2/{name}/referrers/{subject.Digest}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(OciIndex, response.Content.Headers.ContentType?.MediaType);
        var index = await JsonAsync(response);
        Assert.Equal(2, index["schemaVersion"]!.GetValue<int>());
        Assert.Equal(OciIndex, index["mediaType"]!.GetValue<string>());
        var manifests = index["manifests"]!.AsArray();
        Assert.Equal(2, manifests.Count);
        var bySbom = manifests.Single(m => m!["digest"]!.GetValue<string>() == Sha256(sbom))!;
        Assert.Equal(OciManifest, bySbom["mediaType"]!.GetValue<string>());
        Assert.Equal(sbom.Length, bySbom["size"]!.GetValue<long>());
        Assert.Equal("application/vnd.example.sbom", bySbom["artifactType"]!.GetValue<string>());
        Assert.Equal("sbom", bySbom["annotations"]!["org.example.kind"]!.GetValue<string>());
        // Without artifactType, the config's mediaType stands in (spec.md "Listing Referrers").
        var bySig = manifests.Single(m => m!["digest"]!.GetValue<string>() == Sha256(sig))!;
        Assert.Equal("application/vnd.example.sig.config", bySig["artifactType"]!.GetValue<string>());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_of_an_unknown_subject_return_an_empty_index_not_404()
    {
        var name = UniqueName("referrers");
        await Client.PushImageAsync(name, "v1");
        using var response = await Client.GetAsync($"/v2/{name}/referrers/{Sha256(RandomBytes(8))}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var index = await JsonAsync(response);
        Assert.Equal(2, index["schemaVersion"]!.GetValue<int>());
        Assert.Empty(index["manifests"]!.AsArray());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_in_a_repository_that_does_not_exist_return_an_empty_index()
    {
        using var response = await Client.GetAsync($"/v2/{UniqueName("nothing")}/referrers/{Sha256(RandomBytes(8))}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(OciIndex, response.Content.Headers.ContentType?.ToString());
        Assert.Empty((await JsonAsync(response))["manifests"]!.AsArray());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_pushed_before_their_subject_are_listed()
    {
        var name = UniqueName("referrers");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var futureSubject = Sha256(RandomBytes(16));
        var referrer = ImageManifest(config, [], subject: futureSubject, artifactType: "application/vnd.example.early");
        await Client.PushManifestAsync(name, Sha256(referrer), referrer);
        using var response = await Client.GetAsync($"/v2/{name}/referrers/{futureSubject}");
        var manifests = (await JsonAsync(response))["manifests"]!.AsArray();
        Assert.Equal(Sha256(referrer), Assert.Single(manifests)!["digest"]!.GetValue<string>());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_filtered_by_artifactType_answer_OCI_Filters_Applied()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var sbom = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.sbom");
        var sig = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.sig");
        await Client.PushManifestAsync(name, Sha256(sbom), sbom);
        await Client.PushManifestAsync(name, Sha256(sig), sig);

        using var response = await Client.GetAsync($"/v2/{name}/referrers/{subject.Digest}?artifactType=application/vnd.example.sig");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("artifactType", Header(response, "OCI-Filters-Applied"));
        var manifests = (await JsonAsync(response))["manifests"]!.AsArray();
        Assert.Equal(Sha256(sig), Assert.Single(manifests)!["digest"]!.GetValue<string>());

        using var none = await Client.GetAsync($"/v2/{name}/referrers/{subject.Digest}?artifactType=application/vnd.example.none");
        Assert.Empty((await JsonAsync(none))["manifests"]!.AsArray());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_page_with_n_and_a_next_link_through_every_referrer()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        var all = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var m = ImageManifest(config, [], subject: subject.Digest, artifactType: "application/vnd.example.page", annotations: new() { ["i"] = $"{i}" });
            all.Add(await Client.PushManifestAsync(name, Sha256(m), m));
        }
        var seen = await FollowReferrersAsync($"/v2/{name}/referrers/{subject.Digest}?n=2", 2);
        Assert.Equal(all.Order(), seen.Order());
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_filtered_by_artifactType_page_through_every_match()
    {
        var name = UniqueName("referrers");
        var subject = await Client.PushImageAsync(name, "v1");
        var config = "{}"u8.ToArray();
        await Client.PushBlobAsync(name, config);
        // Referrers are kept in digest order; choose five whose types run match, match, other, match, match, so a
        // page of three must skip the other and continue past the first page the store hands back.
        const string Match = "application/vnd.example.match", Other = "application/vnd.example.other";
        var pool = Enumerable.Range(0, 64)
            .Select(i => (Type: i % 2 == 0 ? Match : Other, Body: ImageManifest(config, [], subject: subject.Digest, artifactType: i % 2 == 0 ? Match : Other, annotations: new() { ["i"] = $"{i}" })))
            .OrderBy(m => Sha256(m.Body), StringComparer.Ordinal)
            .ToList();
        var chosen = new List<byte[]>();
        foreach (var wanted in new[] { Match, Match, Other, Match, Match })
        {
            var index = pool.FindIndex(m => m.Type == wanted);
            chosen.Add(pool[index].Body);
            pool.RemoveRange(0, index + 1);
        }
        foreach (var body in chosen)
        {
            await Client.PushManifestAsync(name, Sha256(body), body);
        }
        var seen = await FollowReferrersAsync($"/v2/{name}/referrers/{subject.Digest}?n=3&artifactType={Match}", 3);
        Assert.Equal(chosen.Where((_, i) => i != 2).Select(Sha256), seen);
    }

    /// <summary>Reads every page by following Link rel="next"; returns the digests in the order served.</summary>
    private async Task<List<string>> FollowReferrersAsync(string first, int pageSize)
    {
        var seen = new List<string>();
        string? next = first;
        for (var pages = 0; next is not null; pages++)
        {
            Assert.True(pages < 10, "the next links do not end");
            using var response = await Client.GetAsync(next);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var manifests = (await JsonAsync(response))["manifests"]!.AsArray();
            Assert.True(manifests.Count <= pageSize);
            seen.AddRange(manifests.Select(m => m!["digest"]!.GetValue<string>()));
            next = null;
            if (response.Headers.TryGetValues("Link", out var links))
            {
                var link = Assert.Single(links);
                Assert.Contains("rel=\"next\"", link);
                next = link[(link.IndexOf('<') + 1)..link.IndexOf('>')];
            }
        }
        return seen;
    }

    [Fact(Timeout = 30000)]
    public async Task Referrers_with_an_invalid_digest_return_400()
    {
        using var response = await Client.GetAsync($"/v2/{UniqueName("referrers")}/referrers/sha256:nothex");
        await AssertErrorAsync(response, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }
}
