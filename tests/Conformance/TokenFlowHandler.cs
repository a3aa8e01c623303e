using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Wharf.Tests.Conformance;

/// <summary>
/// What a registry client does with a Bearer challenge (Distribution token.md): on 401 it reads realm, service
/// and scope, asks the realm for a token (with Basic credentials, or anonymously), adds <c>repository:&lt;from&gt;:pull</c>
/// for a mount as containers/image does, and sends the request again with the token. In Basic mode it sends the
/// credentials on every request.
/// </summary>
public sealed partial class TokenFlowHandler(string? user, string? password) : DelegatingHandler(new HttpClientHandler())
{
    private string? _token;

    public string? LastTokenResponse { get; private set; }

    [GeneratedRegex("(\\w+)=\"([^\"]*)\"")]
    private static partial Regex ChallengeParameter();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Authorize(request);
        var response = await base.SendAsync(request, cancellationToken);
        var challenge = response.Headers.WwwAuthenticate.FirstOrDefault(h => h.Scheme == "Bearer");
        if (response.StatusCode != HttpStatusCode.Unauthorized || challenge is null)
        {
            return response;
        }
        var p = ChallengeParameter().Matches(challenge.Parameter ?? "").ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var scopes = new List<string>();
        if (p.TryGetValue("scope", out var scope))
        {
            scopes.Add(scope);
        }
        var from = System.Web.HttpUtility.ParseQueryString(request.RequestUri!.Query)["from"];
        if (from is not null)
        {
            scopes.Add($"repository:{from}:pull");
        }
        var query = "?service=" + Uri.EscapeDataString(p["service"]) + string.Concat(scopes.Select(s => "&scope=" + Uri.EscapeDataString(s)));
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, p["realm"] + query);
        if (user is not null)
        {
            tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        using var tokenResponse = await base.SendAsync(tokenRequest, cancellationToken);
        LastTokenResponse = await tokenResponse.Content.ReadAsStringAsync(cancellationToken);
        if (!tokenResponse.IsSuccessStatusCode)
        {
            return response;
        }
        _token = JsonDocument.Parse(LastTokenResponse).RootElement.GetProperty("token").GetString();
        response.Dispose();
        var again = new HttpRequestMessage(request.Method, request.RequestUri) { Content = request.Content, Version = request.Version };
        foreach (var h in request.Headers.Where(h => h.Key != "Authorization"))
        {
            again.Headers.TryAddWithoutValidation(h.Key, h.Value);
        }
        Authorize(again);
        return await base.SendAsync(again, cancellationToken);
    }

    private void Authorize(HttpRequestMessage request)
    {
        if (_token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }
        else if (user is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
    }
}
