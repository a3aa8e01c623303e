using System.Text.Json;
using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>
/// The placement view (DESIGN principle 3) as one key in the membership backend, changed only by compare-and-set:
/// a change reads the view, applies a pure function and writes it back with the epoch advanced, retrying when
/// another writer got there first. An unchanged view is not written, so the epoch moves only when owners may move.
/// </summary>
public sealed class PlacementViewStore(ICasStore store, string clusterId)
{
    private const int FormatVersion = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string Key { get; } = $"wharf/{clusterId}/placement-view";

    private sealed record Stored(int V, PlacementView View);

    public async Task<PlacementView> ReadAsync(CancellationToken cancellationToken) => (await ReadVersionedAsync(cancellationToken)).View;

    private async Task<(PlacementView View, ulong Version)> ReadVersionedAsync(CancellationToken cancellationToken)
    {
        var entry = await store.GetAsync(Key, cancellationToken);
        if (entry.Value is null || entry.Value.Length == 0)
        {
            return (PlacementView.Empty, entry.Version);
        }
        var stored = JsonSerializer.Deserialize<Stored>(entry.Value, Json)
            ?? throw new InvalidDataException($"placement view at {Key} is empty");
        if (stored.V > FormatVersion)
        {
            throw new InvalidDataException($"placement view at {Key} has format {stored.V}; this build reads up to {FormatVersion}");
        }
        return (stored.View, entry.Version);
    }

    /// <summary>Applies <paramref name="change"/> by compare-and-set; it returns null to leave the view alone.</summary>
    public async Task<PlacementView> UpdateAsync(Func<PlacementView, PlacementView?> change, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var (current, version) = await ReadVersionedAsync(cancellationToken);
            var next = change(current);
            if (next is null || next == current || (next.Epoch == current.Epoch && next.SameContent(current)))
            {
                return current;
            }
            next = next with { Epoch = current.Epoch + 1 };
            if (await store.TryPutAsync(Key, JsonSerializer.SerializeToUtf8Bytes(new Stored(FormatVersion, next), Json), version, cancellationToken))
            {
                return next;
            }
            await Task.Delay(Random.Shared.Next(5, 50), cancellationToken);
        }
        throw new InvalidOperationException($"placement view at {Key} kept changing under 100 attempts");
    }
}
