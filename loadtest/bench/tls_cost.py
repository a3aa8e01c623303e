#!/usr/bin/env python3
"""The cost of TLS on the hottest read: manifest GET by tag, requests/s over plain HTTP and over HTTPS, from ONE
all-in-one listening on both (`--urls "http://…;https://…"`, Wharf:Tls:Mode=Development), the two alternating within
each round, with connections kept alive (what registry clients do) and with `Connection: close` (a TLS handshake on
every request: the worst case). wrk speaks HTTP/1.1 (TLS 1.3 with OpenSSL's defaults) and does not verify the
certificate. Uses bench.py's server, client and wrk helpers (python3 stdlib + wrk). Knobs: ROUNDS, DURATION, CONNS, SMOKE=1.
    loadtest/bench/tls_cost.py            # 3 rounds × 2 schemes × 2 connection modes × 10 s
    SMOKE=1 loadtest/bench/tls_cost.py    # seconds-long; figures mean nothing
"""
import hashlib
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ACCEPT = ("Accept", bench.OCI_MANIFEST)
PATH = "/v2/bench/tls/manifests/latest"


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    tmp = tempfile.mkdtemp(prefix="wharf-tlscost-")
    s = bench.Server("wharf-tls", tmp)
    s.port = bench.free_port()
    tls_port = bench.free_port()
    results = {}
    try:
        s.spawn("allinone", ["dotnet", bench.DLL_SILO, "--urls", f"http://127.0.0.1:{s.port};https://127.0.0.1:{tls_port}",
                             f"--Wharf:DataPath={tmp}/data", "--Wharf:Tls:Mode=Development", "--Logging:LogLevel:Default=Warning"], "wharf.log")
        s.wait_ready("/healthz")
        layer = os.urandom(4096)
        bench.Client(s.port).push_image("bench/tls", "latest", [([layer], "sha256:" + hashlib.sha256(layer).hexdigest(), len(layer))])
        urls = {"http": f"http://127.0.0.1:{s.port}", "https": f"https://127.0.0.1:{tls_port}"}
        for name, url in urls.items():
            bench.wrk(s, [PATH], headers=[ACCEPT], duration=1, url=url)  # warm-up
        for rnd in range(bench.ROUNDS):
            for conn, extra in (("keep-alive", []), ("close", [("Connection", "close")])):
                order = ("http", "https") if rnd % 2 == 0 else ("https", "http")
                for scheme in order:
                    r = bench.wrk(s, [PATH], headers=[ACCEPT, *extra], url=urls[scheme])
                    bench.log(f"round {rnd + 1} {scheme} {conn}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, "
                              f"{r['cpu_ms_per_req']:.3f} CPU-ms/req, errors {r['errors']}")
                    results.setdefault((scheme, conn), []).append(r)
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nmanifest GET by tag, one all-in-one on http and https, wrk {bench.CONNS} connections, {bench.DURATION} s, "
          f"{bench.ROUNDS} alternating round(s), medians")
    print(f"{'scheme':<8}{'connections':<13}{'req/s':>10}{'p99 ms':>10}{'CPU-ms/req':>12}  rounds (req/s)")
    med = {}
    for (scheme, conn), rs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med[(scheme, conn)] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p99_ms", "cpu_ms_per_req")}
        m = med[(scheme, conn)]
        print(f"{scheme:<8}{conn:<13}{m['rps']:>10.0f}{m['p99_ms']:>10.1f}{m['cpu_ms_per_req']:>12.3f}  {', '.join('%.0f' % r['rps'] for r in rs)}")
    for conn in ("keep-alive", "close"):
        print(f"https / http, {conn}: {med[('https', conn)]['rps'] / med[('http', conn)]['rps']:.3f} (requests/s), "
              f"{med[('https', conn)]['cpu_ms_per_req'] / med[('http', conn)]['cpu_ms_per_req']:.3f} (CPU per request)")


if __name__ == "__main__":
    main()
