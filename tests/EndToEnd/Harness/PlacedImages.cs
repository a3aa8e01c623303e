using Wharf.Contracts.Placement;

namespace Wharf.Tests.EndToEnd.Harness;

/// <summary>Images whose records and bytes land on chosen nodes of a placement view, pushed over raw HTTP.</summary>
public static class PlacedImages
{
    /// <summary>Repository names whose records' first owner (where the repository's grain runs) is <paramref name="nodeId"/>.</summary>
    public static IEnumerable<string> RepositoriesOwnedBy(PlacementView view, string nodeId, int count, string prefix = "e2e/failover/r") =>
        Enumerable.Range(0, 10_000).Select(i => $"{prefix}{i}").Where(r => ClusterProcesses.OwnerOfRepository(view, r) == nodeId).Take(count);

    /// <summary>
    /// Pushes an image whose config and manifest hash to <paramref name="node"/> and whose layer hashes to
    /// <paramref name="layerNode"/> (content is varied until the digests land there); blobs go up monolithically,
    /// so their bytes live on their digests' owners.
    /// </summary>
    public static async Task<RawImage> PushAsync(HttpClient http, PlacementView view, string repository, string node, string layerNode, string tag = "v1", int layerSize = 300 << 10)
    {
        byte[] config, layer, manifest;
        var n = 0;
        do
        {
            config = RawOci.Config($"{repository}-{tag}-{n++}");
        }
        while (ClusterProcesses.OwnerOfDigest(view, OciLayout.Sha256(config)) != node);
        layer = RawOci.RandomBytes(layerSize);
        while (ClusterProcesses.OwnerOfDigest(view, OciLayout.Sha256(layer)) != layerNode)
        {
            BitConverter.TryWriteBytes(layer, n++);
        }
        (string, byte[]) configBlob = (OciLayout.Sha256(config), config), layerBlob = (OciLayout.Sha256(layer), layer);
        do
        {
            manifest = RawOci.Manifest(configBlob, [layerBlob], $"{repository}-{tag}-{n++}");
        }
        while (ClusterProcesses.OwnerOfDigest(view, OciLayout.Sha256(manifest)) != node);
        await RawOci.PushMonolithicAsync(http, repository, config);
        await RawOci.PushMonolithicAsync(http, repository, layer);
        await RawOci.PutManifestAsync(http, repository, tag, manifest);
        return new RawImage(repository, tag, manifest, OciLayout.Sha256(manifest), [configBlob, layerBlob]);
    }
}
