using Orleans.Concurrency;

namespace Wharf.Contracts.Grains;

/// <summary>
/// Who may use the registry, kept in the cluster (docs/security.md "Stored identities"): users, robot accounts, teams
/// and policies, one small replicated log (<c>a/access</c>) led by this grain (key 0), written and replicated exactly
/// like a repository's records. Gateways keep a copy of the whole state and follow <see cref="Version"/>.
/// </summary>
[Alias("wharf.IAccessGrain")]
public interface IAccessGrain : IGrainWithIntegerKey
{
    /// <summary>The whole state, with its version.</summary>
    [Alias("Snapshot"), ReadOnly]
    Task<AccessSnapshot> Snapshot();

    /// <summary>
    /// The state's version (raised by every change). <paramref name="watcher"/>, when given, is told of the next
    /// changes for a while (gateways call this every second, so a lost watcher costs at most one poll).
    /// </summary>
    [Alias("Version"), ReadOnly]
    Task<long> Version(IAccessWatcher? watcher);

    /// <summary>Applies one change as one batch of the log; the result names the new version or why not.</summary>
    [Alias("Change")]
    Task<AccessResult> Change(AccessChange change);
}

/// <summary>A gateway's receiver of "the access state changed" (an Orleans observer, as <see cref="ITagLeaseHolder"/>).</summary>
[Alias("wharf.IAccessWatcher")]
public interface IAccessWatcher : IGrainObserver
{
    [Alias("Changed"), OneWay]
    Task Changed(long version);
}

public enum AccessChangeKind
{
    CreateUser,
    UpdateUser,
    DeleteUser,
    CreateRobot,
    RevokeRobot,
    DeleteRobot,
    PutTeam,
    DeleteTeam,
    PutPolicy,
    DeletePolicy,

    /// <summary>Creates <see cref="AccessChange.User"/> and <see cref="AccessChange.Policy"/> only when no user is stored.</summary>
    Bootstrap,
}

[GenerateSerializer, Immutable, Alias("wharf.access-change.v1")]
public sealed record AccessChange(
    [property: Id(0)] AccessChangeKind Kind,
    [property: Id(1)] string Name,
    [property: Id(2)] StoredUser? User = null,
    [property: Id(3)] StoredRobot? Robot = null,
    [property: Id(4)] StoredTeam? Team = null,
    [property: Id(5)] StoredPolicy? Policy = null,
    [property: Id(6)] bool CreateOnly = false);

/// <summary><see cref="Error"/>: null (done), <c>exists</c>, <c>unknown</c> or <c>skipped</c> (a bootstrap with users present).</summary>
[GenerateSerializer, Immutable, Alias("wharf.access-result.v1")]
public sealed record AccessResult(
    [property: Id(0)] string? Error,
    [property: Id(1)] long Version)
{
    public bool Succeeded => Error is null;
}

/// <summary>A stored user: a bcrypt hash, never the password.</summary>
[GenerateSerializer, Immutable, Alias("wharf.stored-user.v1")]
public sealed record StoredUser(
    [property: Id(0)] int V,
    [property: Id(1)] string Name,
    [property: Id(2)] string PasswordHash,
    [property: Id(3)] bool Disabled,
    [property: Id(4)] DateTimeOffset Created,
    [property: Id(5)] DateTimeOffset Updated);

/// <summary>
/// A robot account (<c>robot$name</c>): its secret is 32 random bytes shown once, stored as SHA-256 (a secret of that
/// entropy needs no slow hash). Revoked or past <see cref="Expires"/>: refused.
/// </summary>
[GenerateSerializer, Immutable, Alias("wharf.stored-robot.v1")]
public sealed record StoredRobot(
    [property: Id(0)] int V,
    [property: Id(1)] string Name,
    [property: Id(2)] string SecretHash,
    [property: Id(3)] DateTimeOffset Created,
    [property: Id(4)] DateTimeOffset? Expires,
    [property: Id(5)] DateTimeOffset? Revoked,
    [property: Id(6)] string? Description);

[GenerateSerializer, Immutable, Alias("wharf.stored-team.v1")]
public sealed record StoredTeam(
    [property: Id(0)] int V,
    [property: Id(1)] string Name,
    [property: Id(2)] string[] Members,
    [property: Id(3)] DateTimeOffset Updated);

/// <summary>
/// A stored policy: <see cref="Actions"/> (pull, push, delete, admin, *) on <see cref="Repositories"/> (globs) to
/// <see cref="Subjects"/> (users, robots, <c>team:name</c>, <c>anonymous</c>, <c>*</c>); with
/// <see cref="ImmutableTags"/>, existing tags of matching repositories may not be moved to another digest.
/// </summary>
[GenerateSerializer, Immutable, Alias("wharf.stored-policy.v1")]
public sealed record StoredPolicy(
    [property: Id(0)] int V,
    [property: Id(1)] string Name,
    [property: Id(2)] string[] Subjects,
    [property: Id(3)] string[] Repositories,
    [property: Id(4)] string[] Actions,
    [property: Id(5)] bool ImmutableTags,
    [property: Id(6)] DateTimeOffset Updated);

/// <summary>A user deleted from the store: tokens of that name issued before <see cref="Deleted"/> are refused.</summary>
[GenerateSerializer, Immutable, Alias("wharf.deleted-user.v1")]
public sealed record DeletedUser(
    [property: Id(0)] int V,
    [property: Id(1)] string Name,
    [property: Id(2)] DateTimeOffset Deleted);

[GenerateSerializer, Immutable, Alias("wharf.access-snapshot.v1")]
public sealed record AccessSnapshot(
    [property: Id(0)] long Version,
    [property: Id(1)] StoredUser[] Users,
    [property: Id(2)] StoredRobot[] Robots,
    [property: Id(3)] StoredTeam[] Teams,
    [property: Id(4)] StoredPolicy[] Policies,
    [property: Id(5)] DeletedUser[] DeletedUsers)
{
    public static readonly AccessSnapshot Empty = new(0, [], [], [], [], []);
}
