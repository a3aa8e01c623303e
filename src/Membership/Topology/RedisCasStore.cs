using StackExchange.Redis;

namespace Wharf.Membership.Topology;

/// <summary>Redis: each key is a hash {ver, val}; a Lua script checks the version and writes atomically.</summary>
public sealed class RedisCasStore(IConnectionMultiplexer redis) : ICasStore
{
    private const string PutScript = """
        local v = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
        if v ~= tonumber(ARGV[1]) then return 0 end
        local n = redis.call('INCR', KEYS[2])
        redis.call('HSET', KEYS[1], 'ver', n, 'val', ARGV[2])
        return n
        """;

    private const string DeleteScript = """
        local v = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
        if v == 0 or v ~= tonumber(ARGV[1]) then return 0 end
        redis.call('DEL', KEYS[1])
        return 1
        """;

    private const string VersionCounter = "wharf:cas-version";

    public async Task<CasEntry> GetAsync(string key, CancellationToken cancellationToken)
    {
        var fields = await redis.GetDatabase().HashGetAsync(key, ["ver", "val"]);
        if (fields[0].IsNull)
        {
            return new CasEntry(null, 0);
        }
        return new CasEntry((byte[]?)fields[1] ?? [], (ulong)(long)fields[0]);
    }

    public async Task<bool> TryPutAsync(string key, byte[] value, ulong expectedVersion, CancellationToken cancellationToken)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(PutScript, [key, VersionCounter], [(long)expectedVersion, value]);
        return (long)result > 0;
    }

    public async Task<bool> TryDeleteAsync(string key, ulong expectedVersion, CancellationToken cancellationToken)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(DeleteScript, [key], [(long)expectedVersion]);
        return (long)result > 0;
    }
}
