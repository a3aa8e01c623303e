using System.Diagnostics;
using Wharf.Gateway;
using Wharf.Silo;

namespace Wharf.Tests.Membership;

/// <summary>These tests capture Console.Error, so nothing else may run beside them.</summary>
[CollectionDefinition("console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>A host pointed at a membership backend that is not there stops at once with one clear line and a non-zero exit.</summary>
[Collection("console")]
public sealed class UnreachableBackendTests
{
    private static string[] Args(string provider, string address, string data) =>
    [
        "--urls", $"http://127.0.0.1:{RedisServer.FreePort()}",
        "--Wharf:Role=Silo",
        $"--Wharf:DataPath={data}",
        $"--Wharf:Membership:Provider={provider}",
        $"--Wharf:Membership:Address={address}",
        "--Logging:LogLevel:Default=None",
    ];

    private static async Task<(int Code, string Error, TimeSpan Took)> RunAsync(Func<Task<int>> run)
    {
        var original = Console.Error;
        var error = new StringWriter();
        Console.SetError(error);
        var clock = Stopwatch.StartNew();
        try
        {
            var code = await run();
            return (code, error.ToString(), clock.Elapsed);
        }
        finally
        {
            Console.SetError(original);
        }
    }

    [Theory(Timeout = 30000)]
    [InlineData("Redis")]
    [InlineData("Consul")]
    public async Task A_silo_that_cannot_reach_its_backend_exits_non_zero_with_one_line(string provider)
    {
        var data = Directory.CreateTempSubdirectory("wharf-unreachable-").FullName;
        try
        {
            var port = RedisServer.FreePort(); // nothing listens there
            var address = provider == "Redis" ? $"127.0.0.1:{port}" : $"http://127.0.0.1:{port}";
            var (code, error, took) = await RunAsync(() => SiloHost.RunAsync(Args(provider, address, data)));
            Assert.Equal(3, code);
            Assert.StartsWith("wharf: cannot start:", error);
            Assert.Single(error.Trim().Split('\n'));
            Assert.True(took < TimeSpan.FromSeconds(20), $"took {took}");
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact(Timeout = 30000)]
    public async Task A_gateway_that_cannot_reach_redis_exits_non_zero_with_one_line()
    {
        var port = RedisServer.FreePort();
        var (code, error, _) = await RunAsync(() => GatewayHost.RunAsync(
        [
            "--urls", $"http://127.0.0.1:{RedisServer.FreePort()}",
            "--Wharf:Membership:Provider=Redis",
            $"--Wharf:Membership:Address=127.0.0.1:{port}",
            "--Logging:LogLevel:Default=None",
        ]));
        Assert.NotEqual(0, code);
        Assert.Contains("cannot reach the membership backend", error);
    }
}
