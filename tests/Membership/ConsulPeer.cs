using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wharf.Membership.Consul;

namespace Wharf.Tests.Membership;

/// <summary>
/// A TEST PEER, not Consul: an in-process HTTP server (real Kestrel on 127.0.0.1, a free port) that answers the part
/// of Consul's HTTP API that <see cref="ConsulClient"/> uses, built from Consul's API documentation and its example
/// responses, because no Consul server runs here. What it follows from the docs:
/// <list type="bullet">
/// <item>KV (<c>/v1/kv/:key</c>): GET answers a JSON array of {LockIndex, Key, Flags, Value (base64), CreateIndex,
/// ModifyIndex}; <c>?recurse</c> every key under the prefix; 404 for a missing key or an empty prefix; every read
/// carries <c>X-Consul-Index</c>. PUT stores the raw body and answers <c>true</c>/<c>false</c>; <c>?cas=0</c> creates
/// only, <c>?cas=N</c> writes only if the key's ModifyIndex is N. DELETE, with <c>?recurse</c> and <c>?cas</c>.</item>
/// <item>Indexes: one cluster-wide index that every write advances; a key keeps the CreateIndex of its creation and
/// the ModifyIndex of its last write; deletions leave tombstones so a prefix's index never goes back by deleting.</item>
/// <item>Transactions (<c>PUT /v1/txn</c>): KV verbs set, cas, get, get-tree, check-index, check-not-exists, delete,
/// delete-tree, delete-cas; all or nothing; 200 with <c>Results</c>, or 409 with <c>Errors</c> [{OpIndex, What}];
/// at most 64 operations; one index for the whole transaction.</item>
/// <item>Blocking queries: <c>?index=N&amp;wait=D</c> holds the read until the resource's index passes N or D
/// (at most 10 min, default 5 min) elapses. <see cref="RestoreSnapshot"/> puts back an older state, so the index
/// goes backwards as after a snapshot restore, and wakes every blocking query as Consul's restore does, so clients' reset-to-0 rule can be tested.</item>
/// <item>ACLs: with a token configured, a request without that <c>X-Consul-Token</c> (or <c>?token=</c>) gets 403.</item>
/// <item>Agent: <c>PUT /v1/agent/service/register</c> and <c>/v1/agent/service/deregister/:id</c> (404 for an unknown id).</item>
/// </list>
/// </summary>
public sealed partial class ConsulPeer : IAsyncDisposable
{
    private sealed record Entry(string Key, byte[]? Value, ulong Flags, ulong CreateIndex, ulong ModifyIndex);

    private readonly object _lock = new();
    private readonly SortedDictionary<string, Entry> _kv = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _tombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConsulAgentService> _services = new(StringComparer.Ordinal);
    private readonly string? _token;
    private WebApplication _app = null!;
    private ulong _index = 1;
    private int _restores;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ConsulPeer(string? token) => _token = token;

    public Uri Address { get; private set; } = null!;

    /// <summary>How many KV and txn requests the peer has answered (to show polling versus blocking).</summary>
    public int Requests;

    public ulong Index { get { lock (_lock) { return _index; } } }

    public IReadOnlyDictionary<string, ConsulAgentService> Services
    {
        get { lock (_lock) { return new Dictionary<string, ConsulAgentService>(_services); } }
    }

    public static async Task<ConsulPeer> StartAsync(string? token = null)
    {
        var peer = new ConsulPeer(token);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        peer._app = builder.Build();
        peer._app.Run(peer.HandleAsync);
        await peer._app.StartAsync();
        var address = peer._app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.First();
        peer.Address = new Uri(address.Replace("[::]", "127.0.0.1"));
        return peer;
    }

    /// <summary>A copy of the store and its index, for <see cref="RestoreSnapshot"/>.</summary>
    public object TakeSnapshot()
    {
        lock (_lock)
        {
            return (new SortedDictionary<string, Entry>(_kv, StringComparer.Ordinal), new Dictionary<string, ulong>(_tombstones), _index);
        }
    }

    /// <summary>Puts back an older snapshot: keys and indexes as they were, so the index goes backwards.</summary>
    public void RestoreSnapshot(object snapshot)
    {
        var (kv, tombstones, index) = ((SortedDictionary<string, Entry>, Dictionary<string, ulong>, ulong))snapshot;
        lock (_lock)
        {
            _kv.Clear();
            foreach (var (k, e) in kv)
            {
                _kv[k] = e;
            }
            _tombstones.Clear();
            foreach (var (k, i) in tombstones)
            {
                _tombstones[k] = i;
            }
            _index = index;
            // Consul's state store abandons every blocking query on a restore, so they answer at once.
            _restores++;
            SignalLocked();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext http)
    {
        Interlocked.Increment(ref Requests);
        if (_token is not null && http.Request.Headers["X-Consul-Token"].FirstOrDefault() != _token && http.Request.Query["token"].FirstOrDefault() != _token)
        {
            await Text(http, 403, "Permission denied");
            return;
        }
        var path = http.Request.Path.Value ?? "";
        var method = http.Request.Method;
        if (path.StartsWith("/v1/kv/", StringComparison.Ordinal))
        {
            var key = path["/v1/kv/".Length..];
            await (method switch
            {
                "GET" => KvGetAsync(http, key),
                "PUT" => KvPutAsync(http, key),
                "DELETE" => KvDeleteAsync(http, key),
                _ => Text(http, 405, "method not allowed"),
            });
        }
        else if (path == "/v1/txn" && method == "PUT")
        {
            await TxnAsync(http);
        }
        else if (path == "/v1/agent/service/register" && method == "PUT")
        {
            var registration = await JsonSerializer.DeserializeAsync(http.Request.Body, ConsulJson.Default.ConsulAgentService);
            if (registration is null || (registration.Id == "" && registration.Name == ""))
            {
                await Text(http, 400, "Missing service name");
                return;
            }
            lock (_lock)
            {
                _services[registration.Id == "" ? registration.Name : registration.Id] = registration;
            }
            http.Response.StatusCode = 200;
        }
        else if (path.StartsWith("/v1/agent/service/deregister/", StringComparison.Ordinal) && method == "PUT")
        {
            var id = path["/v1/agent/service/deregister/".Length..];
            bool removed;
            lock (_lock)
            {
                removed = _services.Remove(id);
            }
            await (removed ? Text(http, 200, "") : Text(http, 404, $"Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name."));
        }
        else
        {
            await Text(http, 404, "404 page not found");
        }
    }

    private async Task KvGetAsync(HttpContext http, string key)
    {
        var recurse = http.Request.Query.ContainsKey("recurse");
        var waitIndex = ulong.TryParse(http.Request.Query["index"], NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0;
        var wait = ParseWait(http.Request.Query["wait"]);
        var deadline = DateTime.UtcNow + wait;
        int restores;
        lock (_lock)
        {
            restores = _restores;
        }
        while (true)
        {
            Task changed;
            List<Entry> found;
            ulong index;
            bool abandoned;
            lock (_lock)
            {
                abandoned = _restores != restores;
                found = recurse
                    ? _kv.Values.Where(e => e.Key.StartsWith(key, StringComparison.Ordinal)).ToList()
                    : _kv.TryGetValue(key, out var e) ? [e] : [];
                index = ResourceIndexLocked(key, recurse, found);
                changed = _changed.Task;
            }
            var remaining = deadline - DateTime.UtcNow;
            if (waitIndex == 0 || index > waitIndex || abandoned || remaining <= TimeSpan.Zero)
            {
                http.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
                if (found.Count == 0)
                {
                    http.Response.StatusCode = 404;
                    return;
                }
                await Json(http, 200, found.Select(ToPair).ToList(), ConsulJson.Default.ListConsulKvPair);
                return;
            }
            await Task.WhenAny(changed, Task.Delay(remaining, http.RequestAborted));
            http.RequestAborted.ThrowIfCancellationRequested();
        }
    }

    private async Task KvPutAsync(HttpContext http, string key)
    {
        using var body = new MemoryStream();
        await http.Request.Body.CopyToAsync(body);
        ulong? cas = ulong.TryParse(http.Request.Query["cas"], NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : null;
        var flags = ulong.TryParse(http.Request.Query["flags"], NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 0;
        bool ok;
        lock (_lock)
        {
            ok = CasAllowedLocked(key, cas);
            if (ok)
            {
                _index++;
                SetLocked(key, body.ToArray(), flags);
                SignalLocked();
            }
        }
        await Text(http, 200, ok ? "true" : "false");
    }

    private async Task KvDeleteAsync(HttpContext http, string key)
    {
        ulong? cas = ulong.TryParse(http.Request.Query["cas"], NumberStyles.None, CultureInfo.InvariantCulture, out var c) ? c : null;
        var recurse = http.Request.Query.ContainsKey("recurse");
        bool ok;
        lock (_lock)
        {
            ok = cas is null || (_kv.TryGetValue(key, out var e) && e.ModifyIndex == cas);
            if (ok)
            {
                _index++;
                var keys = recurse ? _kv.Keys.Where(k => k.StartsWith(key, StringComparison.Ordinal)).ToList() : [key];
                foreach (var k in keys)
                {
                    DeleteLocked(k);
                }
                SignalLocked();
            }
        }
        await Text(http, 200, ok ? "true" : "false");
    }

    private static ConsulKvPair ToPair(Entry e) => new()
    {
        Key = e.Key,
        Value = e.Value,
        Flags = e.Flags,
        CreateIndex = e.CreateIndex,
        ModifyIndex = e.ModifyIndex,
        LockIndex = 0,
    };

    private bool CasAllowedLocked(string key, ulong? cas) =>
        cas switch
        {
            null => true,
            0 => !_kv.ContainsKey(key),
            var index => _kv.TryGetValue(key, out var e) && e.ModifyIndex == index,
        };

    private void SetLocked(string key, byte[] value, ulong flags)
    {
        var created = _kv.TryGetValue(key, out var e) ? e.CreateIndex : _index;
        _kv[key] = new Entry(key, value, flags, created, _index);
        _tombstones.Remove(key);
    }

    private void DeleteLocked(string key)
    {
        if (_kv.Remove(key))
        {
            _tombstones[key] = _index;
        }
    }

    // A read's index: the highest ModifyIndex among the keys it covers and their tombstones; for nothing at all, the
    // whole store's index (as Consul answers for a missing key).
    private ulong ResourceIndexLocked(string key, bool recurse, List<Entry> found)
    {
        var index = found.Count == 0 ? 0 : found.Max(e => e.ModifyIndex);
        foreach (var (k, deletedAt) in _tombstones)
        {
            if (recurse ? k.StartsWith(key, StringComparison.Ordinal) : k == key)
            {
                index = Math.Max(index, deletedAt);
            }
        }
        return index == 0 ? _index : index;
    }

    private void SignalLocked()
    {
        _changed.TrySetResult();
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    // Consul's durations: "10s", "5m", "100ms"; at most 10 minutes, 5 by default.
    private static TimeSpan ParseWait(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return TimeSpan.FromMinutes(5);
        }
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        var seconds = double.Parse(number, CultureInfo.InvariantCulture) * unit;
        return TimeSpan.FromSeconds(Math.Min(seconds, 600));
    }

    private static Task Text(HttpContext http, int status, string text)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        return http.Response.WriteAsync(text);
    }

    private static Task Json<T>(HttpContext http, int status, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(JsonSerializer.Serialize(value, type), Encoding.UTF8);
    }
}
