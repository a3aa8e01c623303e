using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Wharf.Membership.Consul;

namespace Wharf.Tests.Membership;

// The Consul test peer's transactions (PUT /v1/txn, Consul's Transaction API): KV operations checked in order against
// the store as the transaction would leave it, applied all together under one new index, or none with a 409.
public sealed partial class ConsulPeer
{
    private async Task TxnAsync(HttpContext http)
    {
        List<ConsulTxnOp>? ops;
        try
        {
            ops = await JsonSerializer.DeserializeAsync(http.Request.Body, ConsulJson.Default.ListConsulTxnOp);
        }
        catch (JsonException e)
        {
            await Text(http, 400, "Failed to parse body: " + e.Message);
            return;
        }
        if (ops is null || ops.Count > 64)
        {
            await Text(http, 413, $"Transaction contains too many operations ({ops?.Count} > 64)");
            return;
        }
        var errors = new List<ConsulTxnError>();
        var results = new List<ConsulTxnResultEntry>();
        lock (_lock)
        {
            // Check every operation against the store as the transaction would leave it; apply only if all pass.
            var staged = new SortedDictionary<string, Entry>(_kv, StringComparer.Ordinal);
            var next = _index + 1;
            for (var n = 0; n < ops.Count; n++)
            {
                var op = ops[n].KV;
                if (op is null)
                {
                    errors.Add(new ConsulTxnError { OpIndex = n, What = "only KV operations are supported by this peer" });
                    continue;
                }
                var exists = staged.TryGetValue(op.Key, out var current);
                string? what = null;
                switch (op.Verb)
                {
                    case ConsulKvVerb.Set:
                        staged[op.Key] = Write(current, op, next);
                        results.Add(Result(staged[op.Key], withValue: false));
                        break;
                    case ConsulKvVerb.Cas:
                        if (op.Index == 0 ? exists : !exists || current!.ModifyIndex != op.Index)
                        {
                            what = $"failed to set key \"{op.Key}\", index is stale";
                            break;
                        }
                        staged[op.Key] = Write(current, op, next);
                        results.Add(Result(staged[op.Key], withValue: false));
                        break;
                    case ConsulKvVerb.Get:
                        if (!exists)
                        {
                            what = $"key \"{op.Key}\" doesn't exist";
                            break;
                        }
                        results.Add(Result(current!, withValue: true));
                        break;
                    case ConsulKvVerb.GetTree:
                        results.AddRange(staged.Values.Where(e => e.Key.StartsWith(op.Key, StringComparison.Ordinal)).Select(e => Result(e, withValue: true)));
                        break;
                    case ConsulKvVerb.CheckIndex:
                        if (!exists || current!.ModifyIndex != op.Index)
                        {
                            what = exists ? $"current modify index {current!.ModifyIndex} != {op.Index}" : $"key \"{op.Key}\" doesn't exist";
                            break;
                        }
                        results.Add(Result(current, withValue: false));
                        break;
                    case ConsulKvVerb.CheckNotExists:
                        if (exists)
                        {
                            what = $"key \"{op.Key}\" exists";
                        }
                        break;
                    case ConsulKvVerb.Delete:
                        staged.Remove(op.Key);
                        break;
                    case ConsulKvVerb.DeleteTree:
                        foreach (var k in staged.Keys.Where(k => k.StartsWith(op.Key, StringComparison.Ordinal)).ToList())
                        {
                            staged.Remove(k);
                        }
                        break;
                    case ConsulKvVerb.DeleteCas:
                        if (!exists || current!.ModifyIndex != op.Index)
                        {
                            what = $"failed to delete key \"{op.Key}\", index is stale";
                            break;
                        }
                        staged.Remove(op.Key);
                        break;
                    default:
                        what = $"unknown KV verb \"{op.Verb}\"";
                        break;
                }
                if (what is not null)
                {
                    errors.Add(new ConsulTxnError { OpIndex = n, What = what });
                }
            }
            if (errors.Count == 0)
            {
                var removed = _kv.Keys.Where(k => !staged.ContainsKey(k)).ToList();
                var written = staged.Values.Where(e => e.ModifyIndex == next).ToList();
                if (removed.Count > 0 || written.Count > 0)
                {
                    _index = next;
                    foreach (var k in removed)
                    {
                        DeleteLocked(k);
                    }
                    foreach (var e in written)
                    {
                        _kv[e.Key] = e;
                    }
                    SignalLocked();
                }
            }
        }
        if (errors.Count > 0)
        {
            await Json(http, 409, new ConsulTxnResponse { Errors = errors }, ConsulJson.Default.ConsulTxnResponse);
            return;
        }
        http.Response.Headers["X-Consul-Index"] = Index.ToString(CultureInfo.InvariantCulture);
        await Json(http, 200, new ConsulTxnResponse { Results = results }, ConsulJson.Default.ConsulTxnResponse);
    }

    private static Entry Write(Entry? current, ConsulTxnKvOp op, ulong index) =>
        new(op.Key, op.Value, op.Flags, current?.CreateIndex ?? index, index);

    private static ConsulTxnResultEntry Result(Entry e, bool withValue) => new() { KV = ToPair(e) with { Value = withValue ? e.Value : null } };
}
