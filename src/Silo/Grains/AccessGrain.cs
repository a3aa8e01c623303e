using Wharf.Contracts.Grains;
using Wharf.Silo.Placement;
using Wharf.Silo.Replication;
using Wharf.Silo.Storage;

namespace Wharf.Silo.Grains;

/// <summary>
/// The leader of the access state's log (<c>a/access</c>, docs/security.md "Stored identities"): users, robots,
/// teams and policies are records of one replicated log, so they survive restarts and the loss of a silo exactly as a
/// repository's records do. Not reentrant: a change reads, decides and appends alone; reads (<c>[ReadOnly]</c>) run
/// beside each other. Every change raises the version and tells the watching gateways.
/// </summary>
[ShardOwnerPlacement, GrainType(GrainTypes.Access)]
public sealed class AccessGrain(RecordStore records, ReplicatedLogs logs) : LogGrain(logs), IAccessGrain
{
    /// <summary>A watcher not heard from for this long (a gateway that went away) is dropped.</summary>
    private static readonly TimeSpan WatchFor = TimeSpan.FromSeconds(10);

    private readonly Dictionary<IAccessWatcher, DateTimeOffset> _watchers = [];

    protected override string LogId => ReplicatedLogs.AccessLog;

    public async Task<AccessSnapshot> Snapshot()
    {
        await ReadableAsync();
        return new AccessSnapshot(
            CurrentVersion(),
            [.. All<StoredUser>(Keys.AccessUserPrefix)],
            [.. All<StoredRobot>(Keys.AccessRobotPrefix)],
            [.. All<StoredTeam>(Keys.AccessTeamPrefix)],
            [.. All<StoredPolicy>(Keys.AccessPolicyPrefix)],
            [.. All<DeletedUser>(Keys.AccessDeletedUserPrefix)]);
    }

    public async Task<long> Version(IAccessWatcher? watcher)
    {
        await ReadableAsync();
        if (watcher is not null)
        {
            lock (_watchers)
            {
                _watchers[watcher] = DateTimeOffset.UtcNow + WatchFor;
            }
        }
        return CurrentVersion();
    }

    public async Task<AccessResult> Change(AccessChange change)
    {
        await ReadableAsync();
        var version = CurrentVersion();
        var batch = new RecordBatch();
        string? error = null;
        switch (change.Kind)
        {
            case AccessChangeKind.CreateUser or AccessChangeKind.UpdateUser:
                var exists = records.Exists(Keys.AccessUserPrefix + change.Name);
                error = change.Kind == AccessChangeKind.CreateUser && exists ? "exists" : change.Kind == AccessChangeKind.UpdateUser && !exists ? "unknown" : null;
                batch.Put(Keys.AccessUserPrefix + change.Name, RecordJson.Encode(change.User!));
                batch.Delete(Keys.AccessDeletedUserPrefix + change.Name);
                break;
            case AccessChangeKind.DeleteUser:
                error = records.Exists(Keys.AccessUserPrefix + change.Name) ? null : "unknown";
                batch.Delete(Keys.AccessUserPrefix + change.Name);
                batch.Put(Keys.AccessDeletedUserPrefix + change.Name, RecordJson.Encode(new DeletedUser(1, change.Name, DateTimeOffset.UtcNow)));
                break;
            case AccessChangeKind.CreateRobot:
                error = records.Exists(Keys.AccessRobotPrefix + change.Name) ? "exists" : null;
                batch.Put(Keys.AccessRobotPrefix + change.Name, RecordJson.Encode(change.Robot!));
                break;
            case AccessChangeKind.RevokeRobot:
                var robot = RecordJson.Decode<StoredRobot>(records.Get(Keys.AccessRobotPrefix + change.Name));
                error = robot is null ? "unknown" : null;
                if (robot is not null)
                {
                    batch.Put(Keys.AccessRobotPrefix + change.Name, RecordJson.Encode(robot with { Revoked = robot.Revoked ?? DateTimeOffset.UtcNow }));
                }
                break;
            case AccessChangeKind.DeleteRobot:
                error = records.Exists(Keys.AccessRobotPrefix + change.Name) ? null : "unknown";
                batch.Delete(Keys.AccessRobotPrefix + change.Name);
                break;
            case AccessChangeKind.PutTeam:
                error = change.CreateOnly && records.Exists(Keys.AccessTeamPrefix + change.Name) ? "exists" : null;
                batch.Put(Keys.AccessTeamPrefix + change.Name, RecordJson.Encode(change.Team!));
                break;
            case AccessChangeKind.DeleteTeam:
                error = records.Exists(Keys.AccessTeamPrefix + change.Name) ? null : "unknown";
                batch.Delete(Keys.AccessTeamPrefix + change.Name);
                break;
            case AccessChangeKind.PutPolicy:
                error = change.CreateOnly && records.Exists(Keys.AccessPolicyPrefix + change.Name) ? "exists" : null;
                batch.Put(Keys.AccessPolicyPrefix + change.Name, RecordJson.Encode(change.Policy!));
                break;
            case AccessChangeKind.DeletePolicy:
                error = records.Exists(Keys.AccessPolicyPrefix + change.Name) ? null : "unknown";
                batch.Delete(Keys.AccessPolicyPrefix + change.Name);
                break;
            case AccessChangeKind.Bootstrap:
                // Only while no user is stored nor was ever deleted: deleting the administrator does not make a new one.
                error = records.Scan(Keys.AccessUserPrefix, null, 1).Count > 0 || records.Scan(Keys.AccessDeletedUserPrefix, null, 1).Count > 0 ? "skipped" : null;
                batch.Put(Keys.AccessUserPrefix + change.User!.Name, RecordJson.Encode(change.User));
                batch.Put(Keys.AccessPolicyPrefix + change.Policy!.Name, RecordJson.Encode(change.Policy));
                break;
            default:
                throw new ArgumentException($"unknown access change {change.Kind}", nameof(change));
        }
        if (error is not null)
        {
            return new AccessResult(error, version);
        }
        version++;
        batch.Put(Keys.AccessVersion, RecordJson.Encode(new AccessVersionRecord(1, version)));
        await AppendAsync(batch);
        Notify(version);
        return new AccessResult(null, version);
    }

    private long CurrentVersion() => RecordJson.Decode<AccessVersionRecord>(records.Get(Keys.AccessVersion))?.Version ?? 0;

    private IEnumerable<T> All<T>(string prefix) where T : class
    {
        string? after = null;
        List<KeyValuePair<string, byte[]>> page;
        do
        {
            page = records.Scan(prefix, after, 1000);
            foreach (var (key, value) in page)
            {
                after = key;
                yield return RecordJson.Decode<T>(value)!;
            }
        }
        while (page.Count == 1000);
    }

    /// <summary>Tells every gateway that watched lately, without waiting (they also poll the version each second).</summary>
    private void Notify(long version)
    {
        List<IAccessWatcher> watchers;
        lock (_watchers)
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var gone in _watchers.Where(w => w.Value < now).Select(w => w.Key).ToList())
            {
                _watchers.Remove(gone);
            }
            watchers = [.. _watchers.Keys];
        }
        foreach (var watcher in watchers)
        {
            try
            {
                _ = watcher.Changed(version);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A gateway that cannot be told polls the version anyway.
            }
        }
    }
}
