using System.Globalization;
using System.Net;
using System.Net.Http.Json;

namespace Wharf.Membership.Consul;

/// <summary>
/// The part of Consul's HTTP API that Wharf uses (KV, transactions, blocking queries, agent services), over
/// <see cref="HttpClient"/>: the <c>Consul</c> NuGet package is not available to us. Every call carries the ACL
/// token in <c>X-Consul-Token</c> when one is set, and fails with a <see cref="ConsulException"/> that names the
/// address and what went wrong, never with a hang: connecting and each non-blocking request are bounded.
/// </summary>
public sealed class ConsulClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _address;
    private readonly TimeSpan _requestTimeout;

    public ConsulClient(Uri address, string? token = null, TimeSpan? requestTimeout = null, TimeSpan? connectTimeout = null)
    {
        _address = address;
        _requestTimeout = requestTimeout ?? TimeSpan.FromSeconds(10);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        };
        // Per-request deadlines (below) replace HttpClient's single timeout, because blocking queries wait longer.
        _http = new HttpClient(handler) { BaseAddress = address, Timeout = Timeout.InfiniteTimeSpan };
        if (!string.IsNullOrEmpty(token))
        {
            _http.DefaultRequestHeaders.Add("X-Consul-Token", token);
        }
    }

    public Uri Address => _address;

    /// <summary><c>GET /v1/kv/:key</c>; null when the key does not exist (404).</summary>
    public async Task<ConsulKvPair?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var result = await ReadAsync("v1/kv/" + EscapeKey(key), 0, null, cancellationToken);
        return result.Pairs.Count == 0 ? null : result.Pairs[0];
    }

    /// <summary>
    /// <c>GET /v1/kv/:prefix?recurse</c>: every key under the prefix (none for 404). With <paramref name="waitIndex"/>
    /// above zero this is a blocking query: Consul answers once its index passes <paramref name="waitIndex"/> or
    /// <paramref name="wait"/> elapses, whichever is first; an answer is no proof of a change.
    /// </summary>
    public Task<ConsulQueryResult> ListAsync(string prefix, ulong waitIndex = 0, TimeSpan? wait = null, CancellationToken cancellationToken = default) =>
        ReadAsync("v1/kv/" + EscapeKey(prefix) + "?recurse", waitIndex, wait, cancellationToken);

    /// <summary>
    /// Follows a prefix with blocking queries: yields the current keys at once, then again each time Consul's index
    /// for the prefix moves (including backwards, after which it starts over from index 0). Between changes it holds
    /// one request open per <paramref name="wait"/> instead of polling.
    /// </summary>
    public async IAsyncEnumerable<ConsulQueryResult> WatchAsync(string prefix, TimeSpan wait,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ulong index = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var result = await ListAsync(prefix, index, wait, cancellationToken);
            var next = NextWaitIndex(index, result.Index);
            if (index == 0 || result.Index != index)
            {
                yield return result;
            }
            index = next;
        }
    }

    /// <summary>
    /// The index to pass to the next blocking query after one answered <paramref name="answered"/>, following the
    /// "implementation details" of Consul's blocking-query page: an index that goes backwards (a snapshot restore,
    /// a new cluster) resets to 0 so the next query does not block on a value the server will not reach soon, and
    /// an index of 0 after the first answer becomes 1.
    /// </summary>
    public static ulong NextWaitIndex(ulong previous, ulong answered)
    {
        if (answered < previous)
        {
            return 0;
        }
        return answered == 0 ? 1 : answered;
    }

    /// <summary><c>PUT /v1/kv/:key</c>; with <paramref name="cas"/> a check-and-set (0 creates only). False when refused.</summary>
    public async Task<bool> PutAsync(string key, byte[] value, ulong? cas = null, CancellationToken cancellationToken = default)
    {
        var path = "v1/kv/" + EscapeKey(key) + (cas is { } index ? "?cas=" + index.ToString(CultureInfo.InvariantCulture) : "");
        using var content = new ByteArrayContent(value);
        using var response = await SendAsync(HttpMethod.Put, path, content, _requestTimeout, cancellationToken);
        await EnsureSuccessAsync(response, path, cancellationToken);
        return await ReadBoolAsync(response, cancellationToken);
    }

    /// <summary><c>DELETE /v1/kv/:key</c>, optionally <c>?recurse</c> (everything under the prefix).</summary>
    public async Task<bool> DeleteAsync(string key, bool recurse = false, CancellationToken cancellationToken = default)
    {
        var path = "v1/kv/" + EscapeKey(key) + (recurse ? "?recurse" : "");
        using var response = await SendAsync(HttpMethod.Delete, path, null, _requestTimeout, cancellationToken);
        await EnsureSuccessAsync(response, path, cancellationToken);
        return await ReadBoolAsync(response, cancellationToken);
    }

    /// <summary>
    /// <c>PUT /v1/txn</c>: the operations apply together or not at all. 200 means committed; 409 means rolled back,
    /// and the result carries Consul's <c>Errors</c> (which operation failed and why).
    /// </summary>
    public async Task<ConsulTxnResult> TxnAsync(IReadOnlyList<ConsulTxnOp> operations, CancellationToken cancellationToken = default)
    {
        const string path = "v1/txn";
        using var content = JsonContent.Create(operations.ToList(), ConsulJson.Default.ListConsulTxnOp);
        using var response = await SendAsync(HttpMethod.Put, path, content, _requestTimeout, cancellationToken);
        if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict)
        {
            var body = await response.Content.ReadFromJsonAsync(ConsulJson.Default.ConsulTxnResponse, cancellationToken)
                ?? new ConsulTxnResponse();
            var results = body.Results?.Select(r => r.KV).OfType<ConsulKvPair>().ToList() ?? [];
            var errors = body.Errors ?? [];
            return new ConsulTxnResult(response.StatusCode == HttpStatusCode.OK && errors.Count == 0, results, errors);
        }
        await EnsureSuccessAsync(response, path, cancellationToken);
        throw new ConsulException($"Consul at {_address} answered {(int)response.StatusCode} to {path}", response.StatusCode);
    }

    /// <summary><c>PUT /v1/agent/service/register</c> on the local agent.</summary>
    public async Task RegisterServiceAsync(ConsulAgentService registration, CancellationToken cancellationToken = default)
    {
        const string path = "v1/agent/service/register";
        using var content = JsonContent.Create(registration, ConsulJson.Default.ConsulAgentService);
        using var response = await SendAsync(HttpMethod.Put, path, content, _requestTimeout, cancellationToken);
        await EnsureSuccessAsync(response, path, cancellationToken);
    }

    /// <summary><c>PUT /v1/agent/service/deregister/:service_id</c>.</summary>
    public async Task DeregisterServiceAsync(string serviceId, CancellationToken cancellationToken = default)
    {
        var path = "v1/agent/service/deregister/" + Uri.EscapeDataString(serviceId);
        using var response = await SendAsync(HttpMethod.Put, path, null, _requestTimeout, cancellationToken);
        await EnsureSuccessAsync(response, path, cancellationToken);
    }

    public void Dispose() => _http.Dispose();

    private async Task<ConsulQueryResult> ReadAsync(string path, ulong waitIndex, TimeSpan? wait, CancellationToken cancellationToken)
    {
        var timeout = _requestTimeout;
        if (waitIndex > 0)
        {
            var w = wait ?? TimeSpan.FromMinutes(5);
            path += (path.Contains('?') ? "&" : "?") + "index=" + waitIndex.ToString(CultureInfo.InvariantCulture)
                + "&wait=" + Math.Max(1, (long)w.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
            // Consul adds up to wait/16 of jitter to a blocking query's wait.
            timeout = w + w / 16 + _requestTimeout;
        }
        using var response = await SendAsync(HttpMethod.Get, path, null, timeout, cancellationToken);
        var index = ReadIndex(response);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return new ConsulQueryResult([], index);
        }
        await EnsureSuccessAsync(response, path, cancellationToken);
        var pairs = await response.Content.ReadFromJsonAsync(ConsulJson.Default.ListConsulKvPair, cancellationToken) ?? [];
        return new ConsulQueryResult(pairs, index);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ConsulUnreachableException($"Consul at {_address} did not answer {method} /{TrimQuery(path)} within {timeout.TotalSeconds:0.#} s", e);
        }
        catch (HttpRequestException e)
        {
            throw new ConsulUnreachableException($"Consul at {_address} is unreachable ({method} /{TrimQuery(path)}): {e.Message}", e);
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, string path, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var body = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
        if (body.Length > 200)
        {
            body = body[..200];
        }
        var what = response.StatusCode == HttpStatusCode.Forbidden
            ? "refused the ACL token (check Wharf:Membership:Token)"
            : "failed";
        throw new ConsulException(
            $"Consul at {_address} {what}: {(int)response.StatusCode} {response.ReasonPhrase} for /{TrimQuery(path)}: {body}",
            response.StatusCode);
    }

    private static async Task<bool> ReadBoolAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
        return string.Equals(text, "true", StringComparison.OrdinalIgnoreCase);
    }

    private static ulong ReadIndex(HttpResponseMessage response) =>
        response.Headers.TryGetValues("X-Consul-Index", out var values)
        && ulong.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? index
            : 0;

    // Keys may hold characters that are special in URLs (a silo address holds ':' and '@' in IPv6 forms).
    private static string EscapeKey(string key) => string.Join('/', key.Split('/').Select(Uri.EscapeDataString));

    private static string TrimQuery(string path) => path.Split('?')[0];
}
