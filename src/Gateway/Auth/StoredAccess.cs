using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;

namespace Wharf.Gateway.Auth;

/// <summary>
/// The access state stored in the cluster (<see cref="IAccessGrain"/>), as this gateway holds it: one immutable
/// <see cref="AccessView"/> swapped whole on each change, so a request reads it with no call to a silo. Changes
/// arrive pushed (this object is the grain's <see cref="IAccessWatcher"/>) and, as a fallback for a lost
/// notification or a grain that moved, by a version poll each second: a revoked robot or a disabled user is refused
/// by every gateway within about a second. On first start it creates the bootstrap administrator.
/// </summary>
public sealed class StoredAccess : BackgroundService, IAccessWatcher
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan VerifiedFor = TimeSpan.FromMinutes(1);

    private readonly IGrainFactory _grains;
    private readonly AuthOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, (string PasswordHash, DateTimeOffset Until)> _verified = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private IAccessWatcher? _reference;
    private volatile AccessView _current;

    public StoredAccess(IGrainFactory grains, AuthOptions options, ILogger<StoredAccess> logger)
    {
        _grains = grains;
        _options = options;
        _logger = logger;
        _current = AccessView.Build(AccessSnapshot.Empty, options.Policies);
    }

    /// <summary>The state as last read; replaced whole.</summary>
    public AccessView Current => _current;

    /// <summary>
    /// Completes once the state was read from the cluster, or at the latest <paramref name="wait"/> after this process
    /// started: a request right after a start waits for the stored users; once that time is past, a cluster that
    /// cannot answer delays nobody (the htpasswd file and configured policies still work).
    /// </summary>
    public Task ReadyAsync(TimeSpan wait)
    {
        if (_loaded.Task.IsCompleted)
        {
            return Task.CompletedTask;
        }
        var left = _started + wait - DateTimeOffset.UtcNow;
        return left <= TimeSpan.Zero ? Task.CompletedTask : Task.WhenAny(_loaded.Task, Task.Delay(left));
    }

    public bool Loaded => _loaded.Task.IsCompleted;

    private IAccessGrain Grain => _grains.GetGrain<IAccessGrain>(0);

    public Task Changed(long version)
    {
        if (version != _current.Version)
        {
            Wake();
        }
        return Task.CompletedTask;
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
        }
    }

    /// <summary>Applies a change through the grain, then reads the state at once, so this gateway sees its own change.</summary>
    public async Task<AccessResult> ChangeAsync(AccessChange change, CancellationToken cancellationToken)
    {
        var result = await Grain.Change(change).WaitAsync(CallTimeout, cancellationToken);
        if (result.Succeeded)
        {
            await RefreshAsync(cancellationToken);
        }
        return result;
    }

    /// <summary>Reads the state from the grain now (the whole of it, once its version differs from ours).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            _reference ??= _grains.CreateObjectReference<IAccessWatcher>(this);
            var version = await Grain.Version(_reference).WaitAsync(CallTimeout, cancellationToken);
            if (version != _current.Version || !_loaded.Task.IsCompleted)
            {
                var snapshot = await Grain.Snapshot().WaitAsync(CallTimeout, cancellationToken);
                _current = AccessView.Build(snapshot, _options.Policies);
                _verified.Clear();
            }
            _loaded.TrySetResult();
        }
        finally
        {
            _refresh.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var bootstrapped = _options.Bootstrap.User is null || string.IsNullOrEmpty(_options.Bootstrap.EffectivePassword);
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!bootstrapped)
                {
                    await BootstrapAsync(stoppingToken);
                    bootstrapped = true;
                }
                await RefreshAsync(stoppingToken);
                if (failures > 0)
                {
                    _logger.LogInformation("access state: reading it from the cluster again (version {Version})", _current.Version);
                }
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A silo still starting, or the grain moving: keep the last state and ask again next second.
                if (++failures == 10)
                {
                    _logger.LogWarning("access state: cannot read it from the cluster ({Error}); using version {Version} until it can", e.Message, _current.Version);
                }
            }
            try
            {
                await _wake.WaitAsync(Poll, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task BootstrapAsync(CancellationToken cancellationToken)
    {
        var user = _options.Bootstrap.User!;
        var now = DateTimeOffset.UtcNow;
        var change = new AccessChange(
            AccessChangeKind.Bootstrap,
            user,
            User: new StoredUser(1, user, HashPassword(_options.Bootstrap.EffectivePassword!), false, now, now),
            Policy: new StoredPolicy(1, "bootstrap-admin", [user], ["**"], ["*", AccessPolicy.Admin], false, now));
        var result = await Grain.Change(change).WaitAsync(CallTimeout, cancellationToken);
        if (result.Succeeded)
        {
            _logger.LogWarning("access state: created the bootstrap administrator {User} with policy bootstrap-admin (admin on **)", user);
        }
    }

    public static string HashPassword(string password) => BCrypt.Net.BCrypt.HashPassword(password, 10);

    public static string HashSecret(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>
    /// Checks credentials against the stored users and robots: null when the name is not stored (the htpasswd file
    /// may know it), else whether they are good. A disabled user, a revoked or expired robot: false.
    /// </summary>
    public bool? Verify(string name, string password)
    {
        var view = _current;
        if (name.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal))
        {
            if (!view.Robots.TryGetValue(name, out var robot))
            {
                return null;
            }
            var given = Encoding.ASCII.GetBytes(HashSecret(password));
            return CryptographicOperations.FixedTimeEquals(given, Encoding.ASCII.GetBytes(robot.SecretHash)) && AccessView.IsValid(robot, DateTimeOffset.UtcNow);
        }
        if (!view.Users.TryGetValue(name, out var user))
        {
            return null;
        }
        if (user.Disabled)
        {
            return false;
        }
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(user.PasswordHash + "\0" + password)));
        if (_verified.TryGetValue(name, out var seen) && seen.Until > DateTimeOffset.UtcNow
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(seen.PasswordHash), Encoding.ASCII.GetBytes(key)))
        {
            return true;
        }
        bool ok;
        try
        {
            ok = BCrypt.Net.BCrypt.Verify(password, user.PasswordHash);
        }
        catch (BCrypt.Net.SaltParseException)
        {
            ok = false;
        }
        if (ok)
        {
            _verified[name] = (key, DateTimeOffset.UtcNow + VerifiedFor);
        }
        return ok;
    }

    public override void Dispose()
    {
        try
        {
            if (_reference is not null)
            {
                _grains.DeleteObjectReference<IAccessWatcher>(_reference);
            }
        }
        catch (ArgumentException)
        {
            // The Orleans client stopped first and dropped the reference itself.
        }
        base.Dispose();
    }
}

/// <summary>One version of the stored access state, indexed for the request path, with the policies in force.</summary>
public sealed class AccessView
{
    private AccessView(AccessSnapshot snapshot, AccessPolicy policy)
    {
        Snapshot = snapshot;
        Policy = policy;
        Users = snapshot.Users.ToDictionary(u => u.Name, StringComparer.Ordinal);
        Robots = snapshot.Robots.ToDictionary(r => r.Name, StringComparer.Ordinal);
        DeletedUsers = snapshot.DeletedUsers.ToDictionary(u => u.Name, u => u.Deleted, StringComparer.Ordinal);
    }

    public long Version => Snapshot.Version;

    public AccessSnapshot Snapshot { get; }

    /// <summary>The configured policies and the stored ones, with the stored teams.</summary>
    public AccessPolicy Policy { get; }

    public IReadOnlyDictionary<string, StoredUser> Users { get; }

    public IReadOnlyDictionary<string, StoredRobot> Robots { get; }

    public IReadOnlyDictionary<string, DateTimeOffset> DeletedUsers { get; }

    public static bool IsValid(StoredRobot robot, DateTimeOffset now) => robot.Revoked is null && (robot.Expires is null || robot.Expires > now);

    public static AccessView Build(AccessSnapshot snapshot, IEnumerable<PolicyOptions> configured)
    {
        var teamsOf = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var team in snapshot.Teams)
        {
            foreach (var member in team.Members)
            {
                if (!teamsOf.TryGetValue(member, out var list))
                {
                    teamsOf[member] = list = [];
                }
                list.Add(team.Name);
            }
        }
        var stored = snapshot.Policies.Select(p => new PolicyOptions
        {
            Name = p.Name,
            Subjects = [.. p.Subjects],
            Repositories = [.. p.Repositories],
            Actions = [.. p.Actions],
            ImmutableTags = p.ImmutableTags,
        });
        var policy = new AccessPolicy(configured.Concat(stored), teamsOf.ToDictionary(t => t.Key, t => t.Value.ToArray(), StringComparer.Ordinal));
        return new AccessView(snapshot, policy);
    }
}
