using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Wharf.Gateway.Abuse;

/// <summary>
/// <c>Wharf:Limits</c>: what a slow or abandoned client may hold. Kestrel closes a connection whose request headers
/// take longer than <see cref="RequestHeadersTimeoutSeconds"/> (slowloris), and a request whose body arrives slower
/// than <see cref="MinRequestBodyBytesPerSecond"/> once <see cref="BodyGraceSeconds"/> have passed (an upload left
/// hanging); an abandoned upload session expires after <c>Wharf:Uploads:ExpireAfter</c> and its chunks are removed.
/// The defaults are Kestrel's own.
/// </summary>
public sealed class ConnectionLimitOptions
{
    public const string Section = "Wharf:Limits";

    public double RequestHeadersTimeoutSeconds { get; set; } = 30;

    public double MinRequestBodyBytesPerSecond { get; set; } = 240;

    public double BodyGraceSeconds { get; set; } = 5;

    public double KeepAliveTimeoutSeconds { get; set; } = 130;

    public IEnumerable<string> Validate()
    {
        if (RequestHeadersTimeoutSeconds is <= 0 or > 3600)
        {
            yield return $"{Section}:RequestHeadersTimeoutSeconds must be in (0, 3600]";
        }
        if (MinRequestBodyBytesPerSecond < 0 || BodyGraceSeconds is <= 0 or > 3600)
        {
            yield return $"{Section}:MinRequestBodyBytesPerSecond must be ≥ 0 (0: no minimum) and BodyGraceSeconds in (0, 3600]";
        }
        if (KeepAliveTimeoutSeconds is <= 0 or > 86400)
        {
            yield return $"{Section}:KeepAliveTimeoutSeconds must be in (0, 86400]";
        }
    }

    public void ApplyTo(KestrelServerLimits limits)
    {
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(RequestHeadersTimeoutSeconds);
        limits.KeepAliveTimeout = TimeSpan.FromSeconds(KeepAliveTimeoutSeconds);
        limits.MinRequestBodyDataRate = MinRequestBodyBytesPerSecond > 0
            ? new MinDataRate(MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(BodyGraceSeconds))
            : null;
    }
}
