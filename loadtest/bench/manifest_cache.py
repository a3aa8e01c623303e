#!/usr/bin/env python3
"""Manifest GET through a gateway in its own process, with its manifest cache and without (DESIGN principle 7).

One redis-server, one silo and two gateway processes over it: `cached` (the defaults: bodies by digest, tags under
the repository grain's lease) and `uncached` (Wharf:Gateway:ManifestCacheMiB=0: every GET asks the grain and reads
the body from the byte service, as before the cache). The same image is pushed once; wrk then GETs it by tag and by
digest through each gateway, in rounds alternating which goes first. Prints medians and the ratio cached / uncached.
CPU per request counts the gateway and the silo. Uses bench.py's knobs: ROUNDS, DURATION, CONNS, WRK_THREADS, SMOKE.

    python3 loadtest/bench/manifest_cache.py        # 3 rounds x 4 wrk runs of 10 s, about 3 minutes
"""
import hashlib, os, statistics, sys, tempfile, shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Server, Client, free_port, log, wrk, OCI_MANIFEST  # noqa: E402


def start(tmp):
    """Redis, a silo and the two gateways; returns the Server owning every process and one Server per gateway."""
    s = Server("wharf", tmp)
    rport = free_port()
    s.spawn("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], "redis.log")
    m = ["--Wharf:Membership:Provider=Redis", f"--Wharf:Membership:Address=127.0.0.1:{rport}", "--Logging:LogLevel:Default=Warning"]
    silo_http = free_port()
    silo = s.spawn("silo", ["dotnet", bench.DLL_SILO, "--Wharf:Role=Silo", *m, "--urls", f"http://127.0.0.1:{silo_http}",
                            f"--Wharf:DataPath={tmp}/silo", f"--Wharf:Bytes:Port={free_port()}", "--Wharf:Cluster:BootstrapExpect=1", "--Wharf:Replication:Factor=1",
                            f"--Wharf:Orleans:SiloPort={free_port()}", f"--Wharf:Orleans:GatewayPort={free_port()}"], "silo.log")
    s.port = silo_http
    s.wait_ready("/readyz")
    gateways = {}
    for name, extra in (("cached", []), ("uncached", ["--Wharf:Gateway:ManifestCacheMiB=0"])):
        g = Server(f"gateway-{name}", tmp)
        g.port = free_port()
        p = s.spawn(f"gateway-{name}", ["dotnet", bench.DLL_GATEWAY, *m, "--urls", f"http://127.0.0.1:{g.port}", *extra], f"gateway-{name}.log")
        g.procs = [("gateway", p), ("silo", silo)]  # CPU per request: this gateway plus the silo
        g.wait_ready("/readyz")
        g.wait_ready("/v2/")
        gateways[name] = g
    return s, gateways


def main():
    tmp = tempfile.mkdtemp(prefix="wharf-manifest-cache-", dir=os.environ.get("TMPROOT", "/tmp"))
    owner = None
    try:
        owner, gateways = start(tmp)
        c = Client(gateways["cached"].port)
        layer = os.urandom(4096)
        digest = c.push_image("bench/base", "latest", [([layer], "sha256:" + hashlib.sha256(layer).hexdigest(), len(layer))])
        paths = {"tag": "/v2/bench/base/manifests/latest", "digest": f"/v2/bench/base/manifests/{digest}"}
        accept = [("Accept", OCI_MANIFEST)]
        for g in gateways.values():  # warm-up, not counted
            wrk(g, [paths["tag"]], headers=accept, duration=1)
        results = {}
        for rnd in range(bench.ROUNDS):
            order = ["cached", "uncached"] if rnd % 2 == 0 else ["uncached", "cached"]
            log(f"round {rnd + 1}/{bench.ROUNDS}, order {order}")
            for kind, path in paths.items():
                for name in order:
                    r = wrk(gateways[name], [path], headers=accept)
                    for k, v in r.items():
                        results.setdefault((name, kind, k), []).append(v)
        print(f"== manifest GET through a gateway process (split mode, 1 silo, Redis), {bench.ROUNDS} round(s), medians; "
              f"wrk {bench.CONNS} connections, {bench.DURATION} s each")
        print(f"{'figure':56} {'unit':>6} | {'cached':>10} | {'uncached':>10} | {'ratio':>6}")
        for kind in paths:
            for key, label, unit in (("rps", "req/s", "req/s"), ("p99_ms", "p99", "ms"), ("p50_ms", "p50", "ms"),
                                     ("cpu_ms_per_req", "CPU per request (gateway + silo)", "ms"), ("errors", "errors", "")):
                a = statistics.median(results[("cached", kind, key)])
                b = statistics.median(results[("uncached", kind, key)])
                ratio = a / b if b else float("nan")
                print(f"{'manifest GET by ' + kind + ', ' + label:56} {unit:>6} | {a:10.2f} | {b:10.2f} | {ratio:6.2f}")
    finally:
        if owner is not None:
            owner.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
