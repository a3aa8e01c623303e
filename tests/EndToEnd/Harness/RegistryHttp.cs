using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>Reads what a registry holds over plain HTTP, independently of the client that pushed it.</summary>
public static class RegistryHttp
{
    private static readonly string[] ManifestTypes =
    [
        OciLayout.ManifestType,
        OciLayout.IndexType,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];

    /// <summary>The digest the registry answers for a manifest reference, or null on 404.</summary>
    public static async Task<string?> ManifestDigestAsync(this HttpClient http, string repository, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repository}/manifests/{reference}");
        foreach (var type in ManifestTypes)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken);
        var computed = OciLayout.Sha256(body);
        // The header and the bytes must agree: a client verifies one against the other.
        Assert.Equal(computed, response.Headers.GetValues("Docker-Content-Digest").Single());
        return computed;
    }

    /// <summary>The sha256 of a blob's bytes as served by the registry.</summary>
    public static async Task<string> BlobSha256Async(this HttpClient http, string repository, string digest)
    {
        using var response = await http.GetAsync($"v2/{repository}/blobs/{digest}", HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken);
        return "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, TestContext.Current.CancellationToken));
    }
}
