using System.Net;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>
/// What a registry acknowledged survives a restart on the same data folder (DESIGN principles 4 and 8): images,
/// tags, and an upload session, which continues where its last acknowledged chunk ended.
/// Its own registries, so it runs beside the shared collection.
/// </summary>
public sealed class RestartTests : IAsyncLifetime
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "wharf-conformance-restart-" + Guid.NewGuid().ToString("N"));

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        RunningRegistry.DeleteFolder(_dataPath);
        return ValueTask.CompletedTask;
    }

    [Fact(Timeout = 60000)]
    public async Task Pushed_image_and_open_upload_survive_a_restart_on_the_same_data_folder()
    {
        var name = UniqueName("restart");
        var large = RandomBytes(300 * 1024);
        var partial = RandomBytes(4000);
        TestImage image;
        string location;
        await using (var first = await RunningRegistry.StartAsync(_dataPath))
        {
            image = await first.Client.PushImageAsync(name, "v1", layerSize: 2000);
            await first.Client.PushBlobAsync(name, large);
            location = await first.Client.StartUploadAsync(name);
            var chunk = Octets(partial[..1500]);
            chunk.Headers.TryAddWithoutValidation("Content-Range", "0-1499");
            using var patch = await first.Client.SendAsync(HttpMethod.Patch, location, chunk);
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        }

        await using var second = await RunningRegistry.StartAsync(_dataPath);
        var client = second.Client;
        using (var manifest = await client.GetAsync($"/v2/{name}/manifests/v1", OciManifest))
        {
            Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
            Assert.Equal(image.Manifest, await BodyAsync(manifest));
        }
        foreach (var (blob, digest) in new[] { (image.Layer, image.LayerDigest), (image.Config, image.ConfigDigest), (large, Sha256(large)) })
        {
            using var response = await client.GetAsync($"/v2/{name}/blobs/{digest}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(blob, await BodyAsync(response));
        }
        using (var tags = await client.GetAsync($"/v2/{name}/tags/list"))
        {
            Assert.Equal("v1", Assert.Single((await JsonAsync(tags))["tags"]!.AsArray())!.GetValue<string>());
        }

        using (var status = await client.GetAsync(location))
        {
            Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
            Assert.Equal("0-1499", Header(status, "Range"));
        }
        var rest = Octets(partial[1500..]);
        rest.Headers.TryAddWithoutValidation("Content-Range", $"1500-{partial.Length - 1}");
        using (var put = await client.SendAsync(HttpMethod.Put, WithQuery(location, "digest=" + Sha256(partial)), rest))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }
        using var resumed = await client.GetAsync($"/v2/{name}/blobs/{Sha256(partial)}");
        Assert.Equal(partial, await BodyAsync(resumed));
    }
}
