using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Placement;

namespace Wharf.Membership.Topology;

/// <summary>
/// Follows the placement view for a process (silo or gateway): polls the backend and publishes each newer epoch.
/// Readers take <see cref="Current"/>; it never goes back to an older epoch.
/// </summary>
public sealed class TopologyFeed(PlacementViewStore store, ILogger<TopologyFeed> logger, TimeSpan? interval = null) : BackgroundService
{
    private readonly TimeSpan _interval = interval ?? TimeSpan.FromSeconds(1);
    private volatile PlacementView _current = PlacementView.Empty;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PlacementView Current => _current;

    /// <summary>Completes when a newer view than the current one has been seen.</summary>
    public Task Changed => _changed.Task;

    /// <summary>Reads the view now (at start, or after a CAS this process made).</summary>
    public async Task<PlacementView> RefreshAsync(CancellationToken cancellationToken)
    {
        Publish(await store.ReadAsync(cancellationToken));
        return _current;
    }

    public void Publish(PlacementView view)
    {
        lock (this)
        {
            if (view.Epoch <= _current.Epoch)
            {
                return;
            }
            _current = view;
            var done = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            done.TrySetResult();
        }
        logger.LogInformation("placement view epoch {Epoch}: {Nodes}", view.Epoch, string.Join(", ", view.Nodes.Select(n => $"{n.NodeId}={n.State}@{n.ByteEndpoint}")));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "could not read the placement view; keeping epoch {Epoch}", _current.Epoch);
            }
            await Task.Delay(_interval, stoppingToken);
        }
    }
}
