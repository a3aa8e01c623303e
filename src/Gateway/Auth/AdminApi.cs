using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wharf.Contracts.Grains;

namespace Wharf.Gateway.Auth;

/// <summary>
/// The gateway's admin API for the stored access state, <c>/admin/v1/{users,robots,teams,policies}</c> (docs/security.md
/// "Admin API"): JSON in and out; errors as <c>{"error","message"}</c> — 400 bad input, 401 no or wrong credentials,
/// 403 not an administrator, 404 unknown, 409 exists, 503 the cluster cannot take it now; never a 500 for input.
/// Users, robots and teams need <c>admin</c> on <c>**</c>; a policy may also be managed by whoever holds <c>admin</c>
/// on patterns that contain every pattern it names (<see cref="AccessPolicy.Within"/>). In mode None it is open, as
/// the registry is.
/// </summary>
public sealed partial class AdminApi(AuthServices auth, IGrainFactory grains, ILogger<AdminApi> logger)
{
    private const int MaxBody = 64 * 1024;

    /// <summary>Where the admin API leaves the authenticated caller's name for the audit log.</summary>
    public const string AdminSubjectKey = "wharf.admin.subject";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\z")]
    private static partial Regex UserName();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9._-]{0,63}\z")]
    private static partial Regex ShortName();

    private sealed class AdminException(int status, string error, string message) : Exception(message)
    {
        public int Status => status;

        public string Error => error;
    }

    private static AdminException BadRequest(string message) => new(StatusCodes.Status400BadRequest, "BAD_REQUEST", message);

    private static AdminException NotFound(string what) => new(StatusCodes.Status404NotFound, "NOT_FOUND", $"{what} does not exist");

    private static AdminException Forbidden(string message) => new(StatusCodes.Status403Forbidden, "DENIED", message);

    public async Task HandleAsync(HttpContext context)
    {
        try
        {
            await auth.ReadyAsync();
            var caller = CallerOf(context);
            var path = (context.Request.RouteValues["path"] as string ?? "").Trim('/');
            var parts = path.Length == 0 ? [] : path.Split('/');
            var method = context.Request.Method;
            object? answer = parts switch
            {
                ["users", ..] => await UsersAsync(context, caller, method, parts[1..]),
                ["robots", ..] => await RobotsAsync(context, caller, method, parts[1..]),
                ["teams", ..] => await TeamsAsync(context, caller, method, parts[1..]),
                ["policies", ..] => await PoliciesAsync(context, caller, method, parts[1..]),
                ["audit"] => await AuditAsync(context, caller, method),
                _ => throw new AdminException(StatusCodes.Status404NotFound, "NOT_FOUND", $"no admin resource /admin/v1/{path} (users, robots, teams, policies, audit)"),
            };
            if (answer is Written)
            {
                return;
            }
            if (answer is null)
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            }
            await WriteAsync(context, context.Response.StatusCode == 0 ? 200 : context.Response.StatusCode, answer);
        }
        catch (AdminException e)
        {
            if (e.Status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{auth.Options.Realm}\"";
            }
            await WriteAsync(context, e.Status, new { error = e.Error, message = e.Message });
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            await WriteAsync(context, StatusCodes.Status400BadRequest, new { error = "BAD_REQUEST", message = "malformed JSON body: " + e.Message });
        }
        catch (Exception e) when (e is TimeoutException or LogUnavailableException or Orleans.Runtime.SiloUnavailableException or GrainMovedException)
        {
            logger.LogWarning("admin API: the access state is unavailable: {Error}", e.Message);
            context.Response.Headers.RetryAfter = "5";
            await WriteAsync(context, StatusCodes.Status503ServiceUnavailable, new { error = "UNAVAILABLE", message = "the access state is unavailable now; ask again" });
        }
        catch (Exception e) when (!context.RequestAborted.IsCancellationRequested)
        {
            logger.LogError(e, "admin API: {Method} {Path} failed", context.Request.Method, context.Request.Path);
            await WriteAsync(context, StatusCodes.Status500InternalServerError, new { error = "UNKNOWN", message = "an unexpected error; see the gateway's log" });
        }
    }

    /// <summary>The caller, when an administrator of something (null in mode None: the registry is open).</summary>
    private Caller CallerOf(HttpContext context)
    {
        if (auth.Options.IsNone)
        {
            return new Caller(null, ["**"]);
        }
        var header = context.Request.Headers.Authorization.ToString();
        string? subject = null;
        if (RegistryAuthFilter.TryBasic(header, out var user, out var password))
        {
            if (!Abuse.LoginThrottle.MayTry(context, user))
            {
                throw new AdminException(StatusCodes.Status429TooManyRequests, "TOOMANYREQUESTS", "too many failed logins; wait for Retry-After");
            }
            if (auth.Verify(user, password))
            {
                subject = user;
            }
            else
            {
                Abuse.LoginThrottle.Failed(context, user);
                logger.LogWarning("admin API: failed login for {User} from {Address}", user, context.Connection.RemoteIpAddress);
            }
        }
        else if (RegistryAuthFilter.TryBearer(header, out var token) && auth.Tokens is { } tokens
                 && tokens.TryValidate(token, out var claims, out _) && !auth.IsRevoked(claims) && claims.Subject.Length > 0)
        {
            subject = claims.Subject;
        }
        if (subject is null)
        {
            throw new AdminException(StatusCodes.Status401Unauthorized, "UNAUTHORIZED", "the admin API needs an administrator's Basic credentials or Bearer token");
        }
        context.Items[AdminSubjectKey] = subject;
        var patterns = auth.Policy.AdminPatterns(subject);
        if (patterns.Count == 0)
        {
            throw Forbidden($"{subject} holds no admin grant");
        }
        return new Caller(subject, patterns);
    }

    /// <summary>An answer the resource wrote itself.</summary>
    private sealed class Written
    {
        public static readonly Written Instance = new();
    }

    /// <summary><c>GET /admin/v1/audit</c>: the audit log (<see cref="Audit.AuditQuery"/>), for administrators of <c>**</c>.</summary>
    private async Task<object?> AuditAsync(HttpContext context, Caller caller, string method)
    {
        if (!HttpMethods.IsGet(method))
        {
            throw new AdminException(StatusCodes.Status405MethodNotAllowed, "METHOD_NOT_ALLOWED", "the audit log is read with GET");
        }
        caller.RequireFull("read the audit log");
        await (await Audit.AuditQuery.HandleAsync(context, grains)).ExecuteAsync(context);
        return Written.Instance;
    }

    private sealed record Caller(string? Subject, IReadOnlyList<string> AdminPatterns)
    {
        public bool Full => AdminPatterns.Contains("**");

        public void RequireFull(string what)
        {
            if (!Full)
            {
                throw Forbidden($"managing {what} needs admin on '**'; {Subject} holds admin on {string.Join(", ", AdminPatterns)}");
            }
        }

        public bool Covers(IEnumerable<string> patterns) => patterns.All(p => AdminPatterns.Any(a => AccessPolicy.Within(p, a)));
    }

    private StoredAccess Store => auth.Stored ?? throw new AdminException(StatusCodes.Status503ServiceUnavailable, "UNAVAILABLE", "this gateway holds no access state");

    private AccessView View => Store.Current;

    private async Task<AccessResult> ChangeAsync(HttpContext context, AccessChange change, string what)
    {
        var result = await Store.ChangeAsync(change, context.RequestAborted);
        return result.Error switch
        {
            null => result,
            "exists" => throw new AdminException(StatusCodes.Status409Conflict, "EXISTS", $"{what} exists already"),
            "unknown" => throw NotFound(what),
            _ => throw new AdminException(StatusCodes.Status409Conflict, "CONFLICT", $"{what}: {result.Error}"),
        };
    }

    private static async Task<JsonElement> BodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxBody)
        {
            throw BadRequest($"the body is limited to {MaxBody} bytes");
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBody)
            {
                throw BadRequest($"the body is limited to {MaxBody} bytes");
            }
        }
        if (buffer.Length == 0)
        {
            throw BadRequest("a JSON object is required");
        }
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(buffer.ToArray()).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw BadRequest("malformed JSON body: " + e.Message);
        }
        return root.ValueKind == JsonValueKind.Object ? root : throw BadRequest("a JSON object is required");
    }

    private static string? String(JsonElement body, string name) =>
        !body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw BadRequest($"'{name}' must be a string");

    private static bool? Bool(JsonElement body, string name) =>
        !body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw BadRequest($"'{name}' must be true or false");

    private static string[]? Strings(JsonElement body, string name)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String) || v.GetArrayLength() > 1000)
        {
            throw BadRequest($"'{name}' must be an array of strings");
        }
        return [.. v.EnumerateArray().Select(e => e.GetString()!)];
    }

    private static void MethodNotAllowed(string method, string path) =>
        throw new AdminException(StatusCodes.Status405MethodNotAllowed, "UNSUPPORTED", $"{method} is not supported on {path}");

    // ---- users ----

    private static object UserJson(StoredUser u) => new { name = u.Name, disabled = u.Disabled, created = u.Created, updated = u.Updated };

    private async Task<object?> UsersAsync(HttpContext context, Caller caller, string method, string[] rest)
    {
        caller.RequireFull("users");
        var view = View;
        switch (method, rest)
        {
            case ("GET", []):
                return view.Snapshot.Users.OrderBy(u => u.Name, StringComparer.Ordinal).Select(UserJson).ToArray();
            case ("GET", [var name]):
                return view.Users.TryGetValue(name, out var found) ? UserJson(found) : throw NotFound($"user {name}");
            case ("POST", []):
            {
                var body = await BodyAsync(context);
                var name = String(body, "name") ?? throw BadRequest("'name' is required");
                if (!UserName().IsMatch(name) || name.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal))
                {
                    throw BadRequest($"'{name}' is not a valid user name (letters, digits, . _ @ -; at most 64)");
                }
                var password = Password(String(body, "password") ?? throw BadRequest("'password' is required"));
                var now = DateTimeOffset.UtcNow;
                var user = new StoredUser(1, name, StoredAccess.HashPassword(password), Bool(body, "disabled") ?? false, now, now);
                await ChangeAsync(context, new AccessChange(AccessChangeKind.CreateUser, name, User: user), $"user {name}");
                context.Response.StatusCode = StatusCodes.Status201Created;
                return UserJson(user);
            }
            case ("PUT", [var name]):
            {
                var body = await BodyAsync(context);
                var existing = view.Users.TryGetValue(name, out var u) ? u : throw NotFound($"user {name}");
                var password = String(body, "password");
                var user = existing with
                {
                    PasswordHash = password is null ? existing.PasswordHash : StoredAccess.HashPassword(Password(password)),
                    Disabled = Bool(body, "disabled") ?? existing.Disabled,
                    Updated = DateTimeOffset.UtcNow,
                };
                await ChangeAsync(context, new AccessChange(AccessChangeKind.UpdateUser, name, User: user), $"user {name}");
                return UserJson(user);
            }
            case ("DELETE", [var name]):
                await ChangeAsync(context, new AccessChange(AccessChangeKind.DeleteUser, name), $"user {name}");
                return null;
            default:
                MethodNotAllowed(method, "/admin/v1/users/" + string.Join('/', rest));
                return null;
        }
    }

    private static string Password(string password) =>
        password.Length is >= 8 and <= 72 ? password : throw BadRequest("a password must have 8 to 72 characters");

    // ---- robots ----

    private static object RobotJson(StoredRobot r) => new
    {
        name = r.Name, description = r.Description, created = r.Created, expires = r.Expires, revoked = r.Revoked,
        valid = AccessView.IsValid(r, DateTimeOffset.UtcNow),
    };

    private static string RobotName(string name) => name.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal) ? name : AuthOptions.RobotPrefix + name;

    private async Task<object?> RobotsAsync(HttpContext context, Caller caller, string method, string[] rest)
    {
        caller.RequireFull("robots");
        var view = View;
        switch (method, rest)
        {
            case ("GET", []):
                return view.Snapshot.Robots.OrderBy(r => r.Name, StringComparer.Ordinal).Select(RobotJson).ToArray();
            case ("GET", [var name]):
                return view.Robots.TryGetValue(RobotName(name), out var found) ? RobotJson(found) : throw NotFound($"robot {RobotName(name)}");
            case ("POST", []):
            {
                var body = await BodyAsync(context);
                var name = RobotName(String(body, "name") ?? throw BadRequest("'name' is required"));
                if (!ShortName().IsMatch(name[AuthOptions.RobotPrefix.Length..]))
                {
                    throw BadRequest($"'{name}' is not a valid robot name (robot$ then lower-case letters, digits, . _ -; at most 64)");
                }
                var now = DateTimeOffset.UtcNow;
                DateTimeOffset? expires = null;
                if (body.TryGetProperty("expiresInSeconds", out var seconds) && seconds.ValueKind != JsonValueKind.Null)
                {
                    if (seconds.ValueKind != JsonValueKind.Number || !seconds.TryGetInt64(out var s) || s is <= 0 or > 100L * 365 * 86400)
                    {
                        throw BadRequest("'expiresInSeconds' must be a positive whole number of seconds");
                    }
                    expires = now.AddSeconds(s);
                }
                else if (String(body, "expires") is { } at)
                {
                    expires = DateTimeOffset.TryParse(at, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var t)
                        ? t : throw BadRequest("'expires' must be an ISO 8601 time");
                }
                var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                var robot = new StoredRobot(1, name, StoredAccess.HashSecret(secret), now, expires, null, String(body, "description"));
                await ChangeAsync(context, new AccessChange(AccessChangeKind.CreateRobot, name, Robot: robot), $"robot {name}");
                context.Response.StatusCode = StatusCodes.Status201Created;
                context.Response.Headers.CacheControl = "no-store";
                return new { name, secret, description = robot.Description, created = now, expires };
            }
            case ("POST", [var name, "revoke"]):
            {
                var full = RobotName(name);
                await ChangeAsync(context, new AccessChange(AccessChangeKind.RevokeRobot, full), $"robot {full}");
                return RobotJson(Store.Current.Robots[full]);
            }
            case ("DELETE", [var name]):
                await ChangeAsync(context, new AccessChange(AccessChangeKind.DeleteRobot, RobotName(name)), $"robot {RobotName(name)}");
                return null;
            default:
                MethodNotAllowed(method, "/admin/v1/robots/" + string.Join('/', rest));
                return null;
        }
    }

    // ---- teams ----

    private static object TeamJson(StoredTeam t) => new { name = t.Name, members = t.Members, updated = t.Updated };

    private async Task<object?> TeamsAsync(HttpContext context, Caller caller, string method, string[] rest)
    {
        caller.RequireFull("teams");
        var view = View;
        switch (method, rest)
        {
            case ("GET", []):
                return view.Snapshot.Teams.OrderBy(t => t.Name, StringComparer.Ordinal).Select(TeamJson).ToArray();
            case ("GET", [var name]):
                return view.Snapshot.Teams.FirstOrDefault(t => t.Name == name) is { } found ? TeamJson(found) : throw NotFound($"team {name}");
            case ("POST", []) or ("PUT", [_]):
            {
                var body = await BodyAsync(context);
                var name = rest.Length == 1 ? rest[0] : String(body, "name") ?? throw BadRequest("'name' is required");
                if (!ShortName().IsMatch(name))
                {
                    throw BadRequest($"'{name}' is not a valid team name (lower-case letters, digits, . _ -; at most 64)");
                }
                var members = Strings(body, "members") ?? [];
                if (members.Any(m => !UserName().IsMatch(m) && !(m.StartsWith(AuthOptions.RobotPrefix, StringComparison.Ordinal) && ShortName().IsMatch(m[AuthOptions.RobotPrefix.Length..]))))
                {
                    throw BadRequest("'members' must be user or robot names");
                }
                var team = new StoredTeam(1, name, [.. members.Distinct(StringComparer.Ordinal)], DateTimeOffset.UtcNow);
                await ChangeAsync(context, new AccessChange(AccessChangeKind.PutTeam, name, Team: team, CreateOnly: method == "POST"), $"team {name}");
                context.Response.StatusCode = method == "POST" ? StatusCodes.Status201Created : StatusCodes.Status200OK;
                return TeamJson(team);
            }
            case ("DELETE", [var name]):
                await ChangeAsync(context, new AccessChange(AccessChangeKind.DeleteTeam, name), $"team {name}");
                return null;
            default:
                MethodNotAllowed(method, "/admin/v1/teams/" + string.Join('/', rest));
                return null;
        }
    }

    // ---- policies ----

    private static object PolicyJson(StoredPolicy p) => new
    {
        name = p.Name, subjects = p.Subjects, repositories = p.Repositories, actions = p.Actions, immutableTags = p.ImmutableTags, updated = p.Updated,
    };

    private async Task<object?> PoliciesAsync(HttpContext context, Caller caller, string method, string[] rest)
    {
        var view = View;
        StoredPolicy? Find(string name) => view.Snapshot.Policies.FirstOrDefault(p => p.Name == name);
        switch (method, rest)
        {
            case ("GET", []):
                return view.Snapshot.Policies.Where(p => caller.Covers(p.Repositories)).OrderBy(p => p.Name, StringComparer.Ordinal).Select(PolicyJson).ToArray();
            case ("GET", [var name]):
                return Find(name) is { } found && caller.Covers(found.Repositories) ? PolicyJson(found) : throw NotFound($"policy {name}");
            case ("POST", []) or ("PUT", [_]):
            {
                var body = await BodyAsync(context);
                var name = rest.Length == 1 ? rest[0] : String(body, "name") ?? throw BadRequest("'name' is required");
                if (!ShortName().IsMatch(name))
                {
                    throw BadRequest($"'{name}' is not a valid policy name (lower-case letters, digits, . _ -; at most 64)");
                }
                var options = new PolicyOptions
                {
                    Name = name,
                    Subjects = [.. Strings(body, "subjects") ?? []],
                    Repositories = [.. Strings(body, "repositories") ?? []],
                    Actions = [.. Strings(body, "actions") ?? []],
                    ImmutableTags = Bool(body, "immutableTags") ?? false,
                };
                if (options.Validate().FirstOrDefault() is { } problem)
                {
                    throw BadRequest(problem);
                }
                if (!caller.Covers(options.Repositories) || (Find(name) is { } old && !caller.Covers(old.Repositories)))
                {
                    throw Forbidden($"{caller.Subject} holds admin on {string.Join(", ", caller.AdminPatterns)}, which does not cover every pattern of policy {name}");
                }
                var policy = new StoredPolicy(1, name, [.. options.Subjects], [.. options.Repositories], [.. options.Actions], options.ImmutableTags, DateTimeOffset.UtcNow);
                await ChangeAsync(context, new AccessChange(AccessChangeKind.PutPolicy, name, Policy: policy, CreateOnly: method == "POST"), $"policy {name}");
                context.Response.StatusCode = method == "POST" ? StatusCodes.Status201Created : StatusCodes.Status200OK;
                return PolicyJson(policy);
            }
            case ("DELETE", [var name]):
                if (Find(name) is { } existing && !caller.Covers(existing.Repositories))
                {
                    throw Forbidden($"{caller.Subject} holds admin on {string.Join(", ", caller.AdminPatterns)}, which does not cover every pattern of policy {name}");
                }
                await ChangeAsync(context, new AccessChange(AccessChangeKind.DeletePolicy, name), $"policy {name}");
                return null;
            default:
                MethodNotAllowed(method, "/admin/v1/policies/" + string.Join('/', rest));
                return null;
        }
    }

    private static async Task WriteAsync(HttpContext context, int status, object body)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, Json);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
    }
}
