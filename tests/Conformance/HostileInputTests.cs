using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CsCheck;
using Wharf.Contracts.Oci;
using static Wharf.Tests.Conformance.RegistryClient;

namespace Wharf.Tests.Conformance;

/// <summary>
/// Issue 14, "Abuse and hostile input", and DESIGN principle 12: random hostile requests against a live all-in-one —
/// any method, names and references near and far from the grammar, random Range, Content-Range, Content-Type, Accept
/// and Content-Length, random manifest and chunk bodies — each get a 2xx or a 4xx with the spec's JSON error, never a
/// 5xx or a hang, and images pushed before the run pull back byte-identical after it. Its own registry: the run leaves
/// upload sessions open and repositories behind that the shared fixture's tests should not see.
/// </summary>
public sealed class HostileInputTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan PerRequest = TimeSpan.FromSeconds(10);

    private static readonly HashSet<string> SpecCodes = [.. Contracts.Oci.ErrorCode.All.Select(e => e.Code)];

    /// <summary>How the body goes out: with its exact length, chunked, or over a raw socket declaring more or fewer bytes than sent.</summary>
    private enum BodyForm
    {
        Exact,
        Chunked,
        DeclaredLonger,
        DeclaredShorter,
    }

    private sealed record Request(string Method, string Path, string? Range, string? ContentRange, string? ContentType, string? Accept, byte[]? Body, BodyForm Form)
    {
        public override string ToString() =>
            $"{Method} {Path} Range={Range} Content-Range={ContentRange} Content-Type={ContentType} Accept={Accept} {Form} body[{Body?.Length}]="
            + (Body is null ? "" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 300)));
    }

    [Fact(Timeout = 240000)]
    public async Task Random_hostile_requests_get_a_2xx_or_a_4xx_with_a_json_error_and_stored_images_pull_back_unchanged()
    {
        var dir = Path.Combine(Path.GetTempPath(), "wharf-hostile-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var registry = await RunningRegistry.StartAsync(dir);
            var client = registry.Client;
            TestImage[] kept = [await client.PushImageAsync("hostile/keep-a", "v1"), await client.PushImageAsync("hostile/keep-b", "v1", mediaType: DockerManifest)];
            var index = Index([(kept[0].Digest, kept[0].Manifest.Length, OciManifest, "linux", "amd64")]);
            var indexDigest = await client.PushManifestAsync("hostile/keep-a", "multi", index, OciIndex);
            // The scratch repository holds the kept image's blobs too, so valid manifests redirected there can succeed.
            await client.PushBlobAsync("hostile/scratch", kept[0].Config);
            await client.PushBlobAsync("hostile/scratch", kept[0].Layer);
            // Open sessions for random chunks to land on, one of them in a repository that must survive.
            var sessions = new List<string>();
            foreach (var name in new[] { "hostile/keep-a", "hostile/scratch", "hostile/scratch" })
            {
                sessions.Add((await client.StartUploadAsync(name)).Split('/')[^1]);
            }

            using var http = new HttpClient { BaseAddress = registry.Address, Timeout = Timeout.InfiniteTimeSpan };
            var statuses = new Dictionary<int, int>();
            var clock = Stopwatch.StartNew();
            await Requests(kept, indexDigest, sessions).SampleAsync(async request =>
            {
                var status = request.Form is BodyForm.DeclaredLonger or BodyForm.DeclaredShorter
                    ? await SendRawAsync(registry.Address, request)
                    : await SendAsync(http, request);
                if (status is >= 200 and < 300)
                {
                    AssertWithinGrammar(request);
                }
                lock (statuses)
                {
                    statuses[status] = statuses.GetValueOrDefault(status) + 1;
                }
            }, iter: 500, threads: 1, print: r => r.ToString());
            TestContext.Current.TestOutputHelper?.WriteLine(
                $"{statuses.Values.Sum()} requests in {clock.Elapsed.TotalSeconds:F1} s: " + string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}")));

            foreach (var image in kept)
            {
                var type = image.Repository == "hostile/keep-b" ? DockerManifest : OciManifest;
                await AssertManifestAsync(client, image.Repository, "v1", type, image.Manifest);
                await AssertManifestAsync(client, image.Repository, image.Digest, type, image.Manifest);
                await client.AssertBlobAsync(image.Repository, image.ConfigDigest, image.Config);
                await client.AssertBlobAsync(image.Repository, image.LayerDigest, image.Layer);
            }
            await AssertManifestAsync(client, "hostile/keep-a", "multi", OciIndex, index);
            await AssertManifestAsync(client, "hostile/keep-a", indexDigest, OciIndex, index);
            using var tags = await client.GetAsync("/v2/hostile/keep-a/tags/list");
            var listed = (await JsonAsync(tags))["tags"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
            Assert.Contains("v1", listed);
            Assert.Contains("multi", listed);
        }
        finally
        {
            RunningRegistry.DeleteFolder(dir);
        }
    }

    // The spec's grammars (spec.md "Pulling manifests", image-spec descriptor.md "Digests"), anchored with \z.
    private static readonly Regex SpecName = new(@"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\z");

    private static readonly Regex SpecTag = new(@"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\z");

    private static readonly Regex SpecDigest = new(@"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\z");

    /// <summary>A request whose name or reference (as the server decodes the path) is outside the grammar never succeeds.</summary>
    private static void AssertWithinGrammar(Request r)
    {
        var path = r.Path.Split('?')[0];
        // ASP.NET Core decodes the path except for %2F, which stays inside its segment.
        var decoded = Uri.UnescapeDataString(path.Replace("%2F", "%252F", StringComparison.OrdinalIgnoreCase));
        var route = Gateway.Distribution.Route.Parse(decoded.Length > 4 ? decoded[4..] : "");
        if (route.Kind is Gateway.Distribution.RouteKind.Base or Gateway.Distribution.RouteKind.Catalog or Gateway.Distribution.RouteKind.Unknown)
        {
            return;
        }
        Assert.True(route.Name.Length <= 255 && SpecName.IsMatch(route.Name), $"{r.Method} {r.Path}: succeeded with the name '{route.Name}'");
        if (route.Kind == Gateway.Distribution.RouteKind.Manifest)
        {
            Assert.True(SpecTag.IsMatch(route.Argument) || SpecDigest.IsMatch(route.Argument), $"{r.Method} {r.Path}: succeeded with the reference '{route.Argument}'");
            var query = r.Path.Contains('?') ? r.Path[(r.Path.IndexOf('?') + 1)..] : "";
            foreach (var tag in query.Split('&').Where(p => p.StartsWith("tag=", StringComparison.Ordinal)).Select(p => Uri.UnescapeDataString(p[4..])))
            {
                Assert.True(r.Method != "PUT" || SpecTag.IsMatch(tag), $"{r.Method} {r.Path}: succeeded with the tag '{tag}'");
            }
        }
    }

    private static async Task AssertManifestAsync(RegistryClient client, string name, string reference, string mediaType, byte[] expected)
    {
        using var response = await client.GetAsync($"/v2/{name}/manifests/{reference}", mediaType);
        Assert.True(response.IsSuccessStatusCode, $"{name}:{reference} answered {(int)response.StatusCode}");
        Assert.Equal(expected, await BodyAsync(response));
    }

    /// <summary>Sends with HttpClient; asserts no 5xx, an answer within the bound, and the spec's error body on a 4xx.</summary>
    private static async Task<int> SendAsync(HttpClient http, Request r)
    {
        using var message = new HttpRequestMessage(new HttpMethod(r.Method), new Uri(r.Path, UriKind.Relative));
        if (r.Body is not null)
        {
            message.Content = r.Form == BodyForm.Chunked ? new StreamContent(new NonSeekableStream(r.Body)) : new ByteArrayContent(r.Body);
        }
        if (r.Range is not null)
        {
            message.Headers.TryAddWithoutValidation("Range", r.Range);
        }
        if (r.Accept is not null)
        {
            message.Headers.TryAddWithoutValidation("Accept", r.Accept);
        }
        if (r.ContentRange is not null || r.ContentType is not null)
        {
            message.Content ??= new ByteArrayContent([]);
            if (r.ContentRange is not null)
            {
                message.Content.Headers.TryAddWithoutValidation("Content-Range", r.ContentRange);
            }
            if (r.ContentType is not null)
            {
                message.Content.Headers.TryAddWithoutValidation("Content-Type", r.ContentType);
            }
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(PerRequest);
        HttpResponseMessage response;
        string text;
        try
        {
            response = await http.SendAsync(message, timeout.Token);
            text = await response.Content.ReadAsStringAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            Assert.Fail($"no answer within {PerRequest.TotalSeconds} s");
            throw;
        }
        catch (HttpRequestException e) when (e.InnerException is IOException && r.Body is { Length: > 64 * 1024 })
        {
            // Refused before its body was read (Kestrel's own 400 for a bad target, or a 413), the connection closed
            // while the client still sent megabytes: the client sees a broken pipe, not the answer.
            return -1;
        }
        using (response)
        {
            var status = (int)response.StatusCode;
            Assert.True(status is >= 200 and < 500, $"answered {status}: {text}");
            if (status == 400 && text.Length == 0 && !response.Headers.Contains("Docker-Distribution-API-Version"))
            {
                // Kestrel refused the request before any handler ran (a NUL or malformed escape in the target): it
                // answers an empty 400 of its own, with no hook to give it a body.
                return -400;
            }
            if (status >= 400 && r.Method != "HEAD")
            {
                Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json", $"{status} with Content-Type {response.Content.Headers.ContentType}: {text}");
                using var doc = JsonDocument.Parse(text);
                var errors = doc.RootElement.GetProperty("errors");
                Assert.NotEqual(0, errors.GetArrayLength());
                foreach (var e in errors.EnumerateArray())
                {
                    Assert.Contains(e.GetProperty("code").GetString(), SpecCodes);
                    Assert.Equal(JsonValueKind.String, e.GetProperty("message").ValueKind);
                }
            }
            return status;
        }
    }

    /// <summary>
    /// Sends over a raw socket with a Content-Length that disagrees with the bytes sent: fewer bytes then the client's
    /// side closed, or more bytes than declared. The answer (none is owed to a client that left) must come within the
    /// bound and not be a 5xx. Returns its status, 0 for none.
    /// </summary>
    private static async Task<int> SendRawAsync(Uri address, Request r)
    {
        var body = r.Body ?? [];
        var declared = r.Form == BodyForm.DeclaredLonger ? body.Length + 1 + body.Length % 1000 : body.Length / 2;
        var head = new StringBuilder($"{r.Method} {r.Path} HTTP/1.1\r\nHost: {address.Authority}\r\nConnection: close\r\n");
        foreach (var (name, value) in new[] { ("Range", r.Range), ("Content-Range", r.ContentRange), ("Content-Type", r.ContentType), ("Accept", r.Accept) })
        {
            if (value is not null)
            {
                head.Append($"{name}: {value}\r\n");
            }
        }
        head.Append($"Content-Length: {declared}\r\n\r\n");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(PerRequest);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var answer = new MemoryStream();
        var reset = false;
        try
        {
            await socket.ConnectAsync(address.Host, address.Port, timeout.Token);
            await socket.SendAsync(Encoding.ASCII.GetBytes(head.ToString()), SocketFlags.None, timeout.Token);
            await socket.SendAsync(body, SocketFlags.None, timeout.Token);
            if (r.Form == BodyForm.DeclaredLonger)
            {
                // A client that dies mid-body: Kestrel takes the end of input as the client leaving and need not answer.
                socket.Shutdown(SocketShutdown.Send);
            }
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0 && answer.Length < 1 << 20)
            {
                answer.Write(buffer, 0, n);
            }
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            Assert.Fail($"no answer or close within {PerRequest.TotalSeconds} s (declared {declared}, sent {body.Length})");
        }
        catch (SocketException)
        {
            // The server answered without reading a long body and closed the connection under our feet: a reset can
            // discard the answer already on the wire, so none is asserted.
            reset = true;
        }
        var text = Encoding.ASCII.GetString(answer.ToArray());
        if (text.Length == 0)
        {
            // Bytes past the declared length are the next request on the connection; the first one is answered.
            Assert.True(r.Form == BodyForm.DeclaredLonger || reset, $"no answer (declared {declared}, sent {body.Length})");
            return 0;
        }
        Assert.StartsWith("HTTP/1.1 ", text);
        var status = int.Parse(text.AsSpan(9, 3));
        Assert.True(status is >= 200 and < 500, $"answered {status} (declared {declared}, sent {body.Length}): {text[..Math.Min(text.Length, 500)]}");
        return status;
    }

    // The generators. Everything is ASCII and already percent-encoded: what a hostile client can put on the wire, not
    // what HttpClient would refuse to send.

    private static readonly Uri Origin = new("http://127.0.0.1/");

    private static readonly Gen<string> Hex64 = Gen.String[Gen.Char["0123456789abcdef"], 64, 64];

    private static readonly Gen<string> Junk = Gen.String[Gen.Char["abcAZ09._-:/%+=*,;@~ "], 0, 40].Select(s => s.Replace(" ", "%20"));

    private static readonly Gen<string> Number = Gen.OneOf(
        Gen.Long[0, 3_000].Select(n => n.ToString()), Gen.Long.Select(n => n.ToString()),
        Gen.OneOf(Gen.Const("9223372036854775807"), Gen.Const("99999999999999999999"), Gen.Const("-1"), Gen.Const(""), Gen.Const("1e3"), Gen.Const("0x10")));

    private static Gen<Request> Requests(TestImage[] kept, string indexDigest, List<string> sessions)
    {
        string[] keptNames = [.. kept.Select(k => k.Repository).Distinct()];
        string[] keptDigests = [.. kept.SelectMany(k => new[] { k.Digest, k.ConfigDigest, k.LayerDigest }), indexDigest];

        var name = Gen.Frequency(
            (3, Gen.OneOf(keptNames)),
            (2, Gen.String[Gen.Char["abc019"], 1, 6].Select(s => "hostile/scratch-" + s)),
            (2, Gen.Const("hostile/scratch")),
            (2, Gen.OneOf("Upper/Case", "a..b", "a//b", "-a", "a%2Fb", "hostile/keep-a%0A", "a%00b", "%C3%A9", "%FF", new string('a', 256),
                string.Join('/', Enumerable.Repeat("a", 200)), ".", "..", "a/./b", "hostile/keep-b/../keep-a", "_catalog", "v2", "%20", "a%3Fb", "a;b")),
            (1, Junk.Where(s => s.Length > 0 && s[0] != '/')));

        var digest = Gen.Frequency(
            (3, Gen.OneOf(keptDigests)),
            (2, Hex64.Select(h => "sha256:" + h)),
            (2, Gen.OneOf(Gen.Const("sha256:xyz"), Hex64.Select(h => "sha256:" + h.ToUpperInvariant()), Gen.Const("md5:d41d8cd98f00b204e9800998ecf8427e"),
                Hex64.Select(h => "sha256+b64u:" + h), Hex64.Select(h => "sha512:" + h), Gen.Const(":"), Gen.Const("sha256:"),
                Gen.OneOf(keptDigests).Select(d => d + "%0A"), Gen.OneOf(keptDigests).Select(d => d[..^1]))));

        var hostileTag = Gen.OneOf("latest%0A", "v1%0A", "v2%0D%0A", "v1%00", new string('t', 129), "-x", ".x", "%2e%2e", "v1%2Fx", "a%20b", "%C3%A9", "v1%09");

        var reference = Gen.Frequency(
            (2, Gen.OneOf("v1", "multi")),
            (2, Gen.String[Gen.Char["abZ09_.-"], 1, 20].Where(t => t[0] is not ('.' or '-'))),
            (3, digest),
            (3, hostileTag),
            (1, Junk.Where(s => s.Length > 0)));

        var uploadId = Gen.Frequency(
            (4, Gen.OneOf([.. sessions])),
            (1, Gen.String[Gen.Char["0123456789abcdef"], 32, 32]),
            (1, Gen.OneOf(sessions[0] + "%0A", sessions[1].ToUpperInvariant(), sessions[2][..31], ".", "..", new string('0', 33))),
            (1, Junk.Where(s => s.Length > 0)));

        var query = Gen.Frequency(
            (6, Gen.Const("")),
            (1, Number.Select(n => "?n=" + n)),
            (1, Gen.Select(Number, Junk, (n, l) => $"?n={n}&last={l}")),
            (2, digest.Select(d => "?digest=" + d)),
            (1, Gen.Select(digest, name, (d, f) => $"?mount={d}&from={f}")),
            (1, reference.Select(t => "?tag=" + t)),
            (2, Gen.Select(hostileTag, reference, (h, t) => $"?tag={t}&tag={h}")),
            (1, Gen.OneOf("?digest-algorithm=sha512", "?digest-algorithm=md5", "?digest-algorithm=", "?artifactType=%00", "?n=1&n=2")));

        var anyMethod = Gen.OneOf("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "BREW", "get", "PROPFIND");

        // Mostly a method the endpoint has, so requests get past the method check into the parsers behind it.
        Gen<(string Method, string Path)> Endpoint(Gen<string> path, params string[] methods) =>
            Gen.Select(Gen.Frequency((3, Gen.OneOf(methods)), (1, anyMethod)), path, (m, p) => (m, p));

        var endpoint = Gen.Frequency(
            (4, Endpoint(Gen.Select(name, reference, (n, r) => $"/v2/{n}/manifests/{r}"), "GET", "HEAD", "PUT", "PUT", "DELETE")),
            (3, Endpoint(Gen.Select(name, digest, (n, d) => $"/v2/{n}/blobs/{d}"), "GET", "HEAD", "DELETE")),
            (2, Endpoint(name.Select(n => $"/v2/{n}/blobs/uploads/"), "POST")),
            (4, Endpoint(Gen.Select(name, uploadId, (n, id) => $"/v2/{n}/blobs/uploads/{id}"), "GET", "PATCH", "PATCH", "PUT", "DELETE")),
            (1, Endpoint(name.Select(n => $"/v2/{n}/tags/list"), "GET")),
            (1, Endpoint(Gen.Select(name, digest, (n, d) => $"/v2/{n}/referrers/{d}"), "GET")),
            (1, Endpoint(Gen.Const("/v2/_catalog"), "GET")),
            (1, Endpoint(Junk.Select(j => "/v2/" + j), "GET")));

        var range = Gen.Frequency(
            (4, Gen.Const((string?)null)),
            (2, Gen.Select(Number, Number, (a, b) => (string?)$"bytes={a}-{b}")),
            (1, Number.Select(n => (string?)$"bytes=-{n}")),
            (1, Gen.OneOf<string?>("bytes=0-1,5-6", "items=0-1", "bytes=", "bytes=--", "0-10", "bytes=5-2")),
            (1, Junk.Select(j => (string?)j.Replace("%20", " "))));

        var contentRange = Gen.Frequency(
            (4, Gen.Const((string?)null)),
            (2, Gen.Select(Number, Number, (a, b) => (string?)$"{a}-{b}")),
            (1, Gen.Select(Number, Number, (a, b) => (string?)$"bytes {a}-{b}/*")),
            (1, Gen.OneOf<string?>("0-9223372036854775807", "-5", "5-", "0--1", "bytes=0-0", "*/10")),
            (1, Junk.Select(j => (string?)j.Replace("%20", " "))));

        var contentType = Gen.Frequency(
            (3, Gen.Const((string?)null)),
            (3, Gen.OneOf<string?>(OciManifest, OciIndex, DockerManifest, DockerManifestList)),
            (1, Gen.OneOf<string?>("application/octet-stream", "application/json", OciManifest + "; charset=utf-8", "text/plain", ";", "")),
            (1, Junk.Select(j => (string?)j)));

        var accept = Gen.Frequency(
            (3, Gen.Const((string?)null)),
            (2, Gen.OneOf<string?>(OciManifest, OciIndex, DockerManifest, "*/*", $"{OciIndex}, {OciManifest};q=0.5", "text/html", "application/*", ",,,")),
            (1, Junk.Select(j => (string?)j)));

        var body = Gen.Frequency(
            (3, Gen.Const((byte[]?)null)),
            (3, Gen.Byte.Array[0, 2048].Select(b => (byte[]?)b)),
            (3, ManifestLike(kept, keptDigests).Select(j => (byte[]?)Encoding.UTF8.GetBytes(j))),
            (1, Gen.Const((byte[]?)new byte[4 * 1024 * 1024 + 1])));

        var form = Gen.Frequency((7, Gen.Const(BodyForm.Exact)), (2, Gen.Const(BodyForm.Chunked)), (1, Gen.Const(BodyForm.DeclaredLonger)), (1, Gen.Const(BodyForm.DeclaredShorter)));

        // The target as it goes on the wire: dot segments resolved as HttpClient (and Kestrel) resolve them, and only
        // targets still under /v2/ (the API; the rest of the port is not the registry's to answer).
        var target = Gen.Select(endpoint, query, (e, q) => (e.Method, Path: new Uri(Origin, e.Path + q).PathAndQuery))
            .Where(e => e.Path.StartsWith("/v2/", StringComparison.Ordinal));
        // A manifest PUT mostly carries manifest-like JSON, so that bodies reach the manifest parser.
        var manifestLike = ManifestLike(kept, keptDigests).Select(j => (byte[]?)Encoding.UTF8.GetBytes(j));
        var bodyFor = Gen.Select(body, manifestLike, Gen.Int[0, 9], (b, m, k) => (Other: b, Manifest: m, PickManifest: k < 7));
        return Gen.Select(target, range, contentRange, contentType, accept, bodyFor, form)
            .Select(t => Protect(new Request(t.Item1.Method, t.Item1.Path, t.Item2, t.Item3, t.Item4, t.Item5,
                t.Item1.Path.Contains("/manifests/") && t.Item6.PickManifest ? t.Item6.Manifest : t.Item6.Other, t.Item7), keptNames));
    }

    /// <summary>
    /// A well-formed DELETE, or a manifest PUT that may overwrite a tag, is a legitimate change, not an attack (mode
    /// none lets anyone make it): aimed at a kept repository it goes to a scratch one instead, so what survives is what
    /// the hostile input could not harm.
    /// </summary>
    private static Request Protect(Request r, string[] keptNames)
    {
        var keptName = keptNames.FirstOrDefault(n => r.Path.StartsWith($"/v2/{n}/", StringComparison.Ordinal));
        if (keptName is null)
        {
            return r;
        }
        var pathOnly = r.Path.Split('?')[0];
        var last = pathOnly[(pathOnly.LastIndexOf('/') + 1)..];
        var wellFormed = Names.IsValidTag(last) || Digest.TryParse(last, out _);
        var changes = (r.Method == "DELETE" && wellFormed) || (r.Method == "PUT" && pathOnly.Contains("/manifests/") && (wellFormed || r.Path.Contains("tag=")));
        return changes ? r with { Path = "/v2/hostile/scratch/" + r.Path[$"/v2/{keptName}/".Length..] } : r;
    }

    /// <summary>Manifest-like JSON: valid manifests and indexes of the kept content with members replaced, repeated or broken.</summary>
    private static Gen<string> ManifestLike(TestImage[] kept, string[] keptDigests)
    {
        var descriptor = Gen.Select(Gen.OneOf(keptDigests), Gen.OneOf("2", "1024", "-1", "1e400", "99999999999999999999", "\"3\"", "1.5", "null"),
            Gen.OneOf("\"sha256:xyz\"", "null", "7", "\"\\ud800\""),
            Gen.Int[0, 3], (d, size, badDigest, kind) => kind switch
            {
                0 => $$"""{"mediaType":"{{OciLayer}}","digest":"{{d}}","size":{{kept[0].Layer.Length}}}""",
                1 => $$"""{"mediaType":"{{OciLayer}}","digest":"{{d}}","size":{{size}}}""",
                2 => $$"""{"mediaType":"{{OciLayer}}","digest":{{badDigest}},"size":2}""",
                _ => $$"""{"mediaType":"{{OciLayer}}","digest":"{{d}}","size":2,"digest":"{{d}}"}""",
            });
        var value = Gen.OneOf(Gen.Const("null"), Gen.Const("[]"), Gen.Const("{}"), Gen.Const("\"\\ud800\""), Gen.Const("\"\\udfff\\u0041\""), Gen.Const("1e400"), Gen.Const("\"x\""),
            descriptor, descriptor.Array[0, 3].Select(d => "[" + string.Join(",", d) + "]"));
        var key = Gen.OneOf("schemaVersion", "mediaType", "config", "layers", "manifests", "subject", "annotations", "artifactType", "a\\ud800", "\\udfff\\u0041", "config");
        return Gen.Select(Gen.Int[0, 3], descriptor.Array[0, 4], Gen.Select(key, value).Array[0, 3], Gen.Int[0, 200], (kind, layers, extra, nesting) =>
        {
            if (kind == 3)
            {
                // A valid manifest of content the repository holds, so a request that gets this far can succeed.
                return Encoding.UTF8.GetString(ImageManifest(kept[0].Config, [kept[0].Layer], annotations: new() { ["n"] = nesting.ToString() }));
            }
            var members = new List<string> { "\"schemaVersion\":2" };
            if (kind == 0)
            {
                members.Add($"\"mediaType\":\"{OciManifest}\"");
                members.Add($$"""
                    "config":{"mediaType":"{{OciConfig}}","digest":"{{kept[0].ConfigDigest}}","size":{{kept[0].Config.Length}}}
                    """);
                members.Add("\"layers\":[" + string.Join(",", layers) + "]");
            }
            else if (kind == 1)
            {
                members.Add($"\"mediaType\":\"{OciIndex}\"");
                members.Add("\"manifests\":[" + string.Join(",", layers.Select(l => l.Replace(OciLayer, OciManifest))) + "]");
            }
            else
            {
                members.Add("\"annotations\":" + new string('[', nesting) + new string(']', nesting));
            }
            members.AddRange(extra.Select(e => $"\"{e.Item1}\":{e.Item2}"));
            return "{" + string.Join(",", members) + "}";
        });
    }
}
