#!/usr/bin/env python3
"""The cost of the audit log on the hottest read: manifest GET by tag with Wharf:Audit:Enabled=false and with the
audit log recording every manifest pull (the default), alternating rounds on one all-in-one build, as a ratio.
Uses bench.py's server, client and wrk helpers (python3 stdlib + wrk). Knobs: ROUNDS, DURATION, CONNS, SMOKE=1.
    loadtest/bench/audit_cost.py            # 3 rounds x 2 settings x 10 s
    SMOKE=1 loadtest/bench/audit_cost.py    # seconds-long; figures mean nothing
"""
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ACCEPT = ("Accept", bench.OCI_MANIFEST)
SETTINGS = {"off": ["--Wharf:Audit:Enabled=false"], "on": ["--Wharf:Audit:Enabled=true", "--Wharf:Audit:ManifestReads=true"]}


def start(tmp, setting):
    s = bench.Server(f"wharf-audit-{setting}", tmp)
    s.port = bench.free_port()
    s.spawn("allinone", ["dotnet", bench.DLL_SILO, "--urls", f"http://127.0.0.1:{s.port}", f"--Wharf:DataPath={tmp}/data",
                         "--Logging:LogLevel:Default=Warning", *SETTINGS[setting]], "wharf.log")
    s.wait_ready("/healthz")
    return s


def recorded(port, since):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/audit?action=manifest.pull&from={since}&limit=10000", timeout=60) as r:
        body = json.load(r)
    return len(body["events"]), body["truncated"]


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    results = {"off": [], "on": []}
    for rnd in range(bench.ROUNDS):
        for setting in ("off", "on") if rnd % 2 == 0 else ("on", "off"):
            tmp = tempfile.mkdtemp(prefix="wharf-auditcost-")
            s = None
            try:
                s = start(tmp, setting)
                layer = os.urandom(4096)
                bench.Client(s.port).push_image("bench/audit", "latest", [([layer], "sha256:" + hashlib.sha256(layer).hexdigest(), len(layer))])
                bench.wrk(s, ["/v2/bench/audit/manifests/latest"], headers=[ACCEPT], duration=1)  # warm-up
                since = __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime())
                r = bench.wrk(s, ["/v2/bench/audit/manifests/latest"], headers=[ACCEPT])
                if setting == "on":
                    __import__("time").sleep(2)  # the writer's one-second batches
                    n, more = recorded(s.port, since)
                    r["recorded"] = f"{n}{'+' if more else ''}"
                bench.log(f"round {rnd + 1} audit {setting}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, {r['cpu_ms_per_req']:.3f} CPU-ms/req, "
                          f"errors {r['errors']}{', pulls recorded (first 10000) ' + r['recorded'] if 'recorded' in r else ''}")
                results[setting].append(r)
            finally:
                if s:
                    s.stop()
                shutil.rmtree(tmp, ignore_errors=True)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p99_ms", "cpu_ms_per_req")} for m, rs in results.items()}
    print(f"\nmanifest GET by tag, wrk {bench.CONNS} connections, {bench.DURATION} s, {bench.ROUNDS} alternating round(s), medians")
    print(f"{'audit':<8}{'req/s':>10}{'p99 ms':>10}{'CPU-ms/req':>12}  rounds (req/s)")
    for m in ("off", "on"):
        print(f"{m:<8}{med[m]['rps']:>10.0f}{med[m]['p99_ms']:>10.1f}{med[m]['cpu_ms_per_req']:>12.3f}  {', '.join('%.0f' % r['rps'] for r in results[m])}")
    print(f"on / off: {med['on']['rps'] / med['off']['rps']:.3f} (requests/s), {med['on']['cpu_ms_per_req'] / med['off']['cpu_ms_per_req']:.3f} (CPU per request)")


if __name__ == "__main__":
    main()
