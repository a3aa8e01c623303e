using System.Net;
using Microsoft.AspNetCore.Http;
using Wharf.Gateway.Auth;

namespace Wharf.Tests.Unit.Auth;

public class TrustedProxyListTests
{
    private static HttpContext Request(string remote, string? proto = null, string? host = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Scheme = "http";
        context.Request.Host = new HostString("10.1.2.3:5000");
        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        if (proto is not null)
        {
            context.Request.Headers["X-Forwarded-Proto"] = proto;
        }
        if (host is not null)
        {
            context.Request.Headers["X-Forwarded-Host"] = host;
        }
        return context;
    }

    [Theory]
    [InlineData("10.0.0.7", "https", "registry.example.com", "https://registry.example.com")]
    [InlineData("10.0.0.7", "https, http", "registry.example.com, inner", "https://registry.example.com")]
    [InlineData("::ffff:10.0.0.7", "https", "registry.example.com:8443", "https://registry.example.com:8443")]
    [InlineData("192.168.1.1", "https", "evil.example", "http://10.1.2.3:5000")]
    [InlineData("10.0.0.7", "gopher", "bad host/with path", "http://10.1.2.3:5000")]
    public void Forwarded_headers_count_only_from_trusted_proxies(string remote, string proto, string host, string expected) =>
        Assert.Equal(expected, new TrustedProxyList(["10.0.0.0/8", "fd00::1"]).PublicBase(Request(remote, proto, host)));

    [Theory]
    [InlineData("10.0.0.0/8", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("fd00::/8", true)]
    [InlineData("10.0.0.0/33", false)]
    [InlineData("example.com", false)]
    public void Entries_are_addresses_or_cidr_ranges(string entry, bool valid) => Assert.Equal(valid, TrustedProxyList.TryParse(entry, out _));
}
