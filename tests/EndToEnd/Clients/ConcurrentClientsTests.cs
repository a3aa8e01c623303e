using Wharf.Tests.EndToEnd.Harness;

namespace Wharf.Tests.EndToEnd.Clients;

/// <summary>Several real clients at once against one registry, pushing the same layers to different repositories.</summary>
[Collection(SharedRegistry.Name)]
public sealed class ConcurrentClientsTests(RegistryFixture fixture)
{
    [Fact(Timeout = 180_000)]
    public async Task Concurrent_pushes_of_the_same_layers_to_different_repositories_all_succeed()
    {
        var source = new OciLayout(fixture.NewFolder("concurrent"));
        var image = source.AddImage("v1", [8 << 20, 1 << 20, 16 << 10]);
        const int clients = 4;

        // The layers are new random bytes that no blob-info cache knows yet, so all four clients upload the same
        // digests at the same time, and the registry commits each digest several times concurrently.
        var tools = Enumerable.Range(0, clients).Select(_ => new ContainerTools()).ToList();
        try
        {
            await Task.WhenAll(tools.Select((t, i) =>
                t.SkopeoAsync("copy", "--dest-tls-verify=false", source.Reference("v1"), $"docker://{fixture.Registry.Host}/e2e/concurrent/app{i}:v1").EnsureSuccessAsync()));

            for (var i = 0; i < clients; i++)
            {
                var repository = $"e2e/concurrent/app{i}";
                Assert.Equal(image.Manifest.Digest, await fixture.Http.ManifestDigestAsync(repository, "v1"));
                foreach (var layer in image.Layers)
                {
                    Assert.Equal(layer.Digest, await fixture.Http.BlobSha256Async(repository, layer.Digest));
                }
            }
        }
        finally
        {
            tools.ForEach(t => t.Dispose());
        }
    }
}
