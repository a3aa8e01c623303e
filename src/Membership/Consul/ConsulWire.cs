using System.Text.Json.Serialization;

namespace Wharf.Membership.Consul;

// The JSON shapes of Consul's HTTP API (https://developer.hashicorp.com/consul/api-docs), as documented there.
// Consul names fields in PascalCase; byte[] values travel base64-encoded, as the KV endpoint documents.

/// <summary>One entry of <c>GET /v1/kv/:key</c>: the value is base64 in JSON and null for a key with no value.</summary>
public sealed record ConsulKvPair
{
    public string Key { get; init; } = "";

    public byte[]? Value { get; init; }

    public ulong Flags { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }

    public ulong LockIndex { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Session { get; init; }
}

/// <summary>The answer of a KV read: the pairs (empty for 404) and <c>X-Consul-Index</c>.</summary>
public sealed record ConsulQueryResult(IReadOnlyList<ConsulKvPair> Pairs, ulong Index);

/// <summary>KV verbs of <c>/v1/txn</c> (KV operations table of the Transaction API).</summary>
public static class ConsulKvVerb
{
    public const string Set = "set";
    public const string Cas = "cas";
    public const string Get = "get";
    public const string GetTree = "get-tree";
    public const string CheckIndex = "check-index";
    public const string CheckNotExists = "check-not-exists";
    public const string Delete = "delete";
    public const string DeleteTree = "delete-tree";
    public const string DeleteCas = "delete-cas";
}

/// <summary>One KV operation in a transaction: <c>{"KV": {"Verb", "Key", "Value", "Flags", "Index"}}</c>.</summary>
public sealed record ConsulTxnKvOp
{
    public string Verb { get; init; } = "";

    public string Key { get; init; } = "";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public byte[]? Value { get; init; }

    public ulong Flags { get; init; }

    public ulong Index { get; init; }
}

public sealed record ConsulTxnOp
{
    [JsonPropertyName("KV")]
    public ConsulTxnKvOp? KV { get; init; }

    public static ConsulTxnOp Kv(string verb, string key, byte[]? value = null, ulong index = 0) =>
        new() { KV = new ConsulTxnKvOp { Verb = verb, Key = key, Value = value, Index = index } };
}

public sealed record ConsulTxnResultEntry
{
    [JsonPropertyName("KV")]
    public ConsulKvPair? KV { get; init; }
}

/// <summary>An entry of a rolled-back transaction's <c>Errors</c> list.</summary>
public sealed record ConsulTxnError
{
    public int OpIndex { get; init; }

    public string What { get; init; } = "";
}

/// <summary>The body of <c>PUT /v1/txn</c>'s answer: 200 with <c>Results</c>, or 409 with <c>Errors</c>.</summary>
public sealed record ConsulTxnResponse
{
    public List<ConsulTxnResultEntry>? Results { get; init; }

    public List<ConsulTxnError>? Errors { get; init; }
}

/// <summary>A transaction's outcome: committed (all operations applied) or rolled back with the reasons.</summary>
public sealed record ConsulTxnResult(bool Committed, IReadOnlyList<ConsulKvPair> Results, IReadOnlyList<ConsulTxnError> Errors);

/// <summary>The body of <c>PUT /v1/agent/service/register</c> (the fields Wharf uses).</summary>
public sealed record ConsulAgentService
{
    [JsonPropertyName("ID")]
    public string Id { get; init; } = "";

    public string Name { get; init; } = "";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Tags { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Address { get; init; }

    public int Port { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Meta { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ConsulAgentCheck? Check { get; init; }
}

/// <summary>An HTTP check: Consul GETs <see cref="Http"/> every <see cref="Interval"/> (durations like "10s").</summary>
public sealed record ConsulAgentCheck
{
    [JsonPropertyName("HTTP")]
    public string Http { get; init; } = "";

    public string Interval { get; init; } = "10s";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Timeout { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? DeregisterCriticalServiceAfter { get; init; }
}

[JsonSerializable(typeof(List<ConsulKvPair>))]
[JsonSerializable(typeof(List<ConsulTxnOp>))]
[JsonSerializable(typeof(ConsulTxnResponse))]
[JsonSerializable(typeof(ConsulAgentService))]
public sealed partial class ConsulJson : JsonSerializerContext;
