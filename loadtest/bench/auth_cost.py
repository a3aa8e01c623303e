#!/usr/bin/env python3
"""The cost of token auth on the hottest read: manifest GET by tag, requests/s with Wharf:Auth:Mode=None and with
Mode=Token (a Bearer token validated on every request), alternating rounds on the same machine, reported as a ratio.
Uses bench.py's server, client and wrk helpers (python3 stdlib + wrk). Knobs: ROUNDS, DURATION, CONNS, SMOKE=1.
    loadtest/bench/auth_cost.py            # 3 rounds × 2 modes × 10 s
    SMOKE=1 loadtest/bench/auth_cost.py    # seconds-long; figures mean nothing
"""
import base64
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

# `htpasswd -nbB alice 's3cret-Pass'`, as in the tests.
HTPASSWD = "alice:$2y$05$rUm0JXU6N5y5cCLKE0lTAeCxgxp62KG2jNejCcXpVvlfapz5rUZBG\n"
ACCEPT = ("Accept", bench.OCI_MANIFEST)


class AuthClient(bench.Client):
    def __init__(self, port, authorization):
        super().__init__(port)
        self.authorization = authorization

    def req(self, method, path, body=None, headers=None, want=None, read=True):
        headers = dict(headers or {})
        if self.authorization:
            headers["Authorization"] = self.authorization
        return super().req(method, path, body, headers, want, read)


def token(port, scope):
    basic = base64.b64encode(b"alice:s3cret-Pass").decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/auth/token?service=wharf-registry&scope={scope}", headers={"Authorization": "Basic " + basic})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["token"]


def start(tmp, mode):
    s = bench.Server(f"wharf-{mode.lower()}", tmp)
    s.port = bench.free_port()
    extra = []
    if mode == "Token":
        with open(os.path.join(tmp, "htpasswd"), "w") as f:
            f.write(HTPASSWD)
        # An hour-long token, so no wrk run crosses an expiry.
        extra = ["--Wharf:Auth:Mode=Token", f"--Wharf:Auth:Htpasswd={tmp}/htpasswd", "--Wharf:Auth:Token:LifetimeSeconds=3600"]
    s.spawn("allinone", ["dotnet", bench.DLL_SILO, "--urls", f"http://127.0.0.1:{s.port}", f"--Wharf:DataPath={tmp}/data",
                         "--Logging:LogLevel:Default=Warning", *extra], "wharf.log")
    s.wait_ready("/healthz")
    return s


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install -y wrk")
    results = {"None": [], "Token": []}
    for rnd in range(bench.ROUNDS):
        for mode in ("None", "Token"):
            tmp = tempfile.mkdtemp(prefix="wharf-authcost-")
            s = None
            try:
                s = start(tmp, mode)
                auth = ("Bearer " + token(s.port, "repository:bench/auth:pull,push")) if mode == "Token" else None
                layer = os.urandom(4096)
                AuthClient(s.port, auth).push_image("bench/auth", "latest", [([layer], "sha256:" + hashlib.sha256(layer).hexdigest(), len(layer))])
                headers = [ACCEPT] + ([("Authorization", "Bearer " + token(s.port, "repository:bench/auth:pull"))] if mode == "Token" else [])
                bench.wrk(s, ["/v2/bench/auth/manifests/latest"], headers=headers, duration=1)  # warm-up
                r = bench.wrk(s, ["/v2/bench/auth/manifests/latest"], headers=headers)
                bench.log(f"round {rnd + 1} {mode}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, {r['cpu_ms_per_req']:.3f} CPU-ms/req, errors {r['errors']}")
                results[mode].append(r)
            finally:
                if s:
                    s.stop()
                shutil.rmtree(tmp, ignore_errors=True)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p99_ms", "cpu_ms_per_req")} for m, rs in results.items()}
    print(f"\nmanifest GET by tag, wrk {bench.CONNS} connections, {bench.DURATION} s, {bench.ROUNDS} alternating round(s), medians")
    print(f"{'mode':<8}{'req/s':>10}{'p99 ms':>10}{'CPU-ms/req':>12}  rounds (req/s)")
    for m in ("None", "Token"):
        print(f"{m:<8}{med[m]['rps']:>10.0f}{med[m]['p99_ms']:>10.1f}{med[m]['cpu_ms_per_req']:>12.3f}  {', '.join('%.0f' % r['rps'] for r in results[m])}")
    print(f"Token / None: {med['Token']['rps'] / med['None']['rps']:.3f} (requests/s), "
          f"{med['Token']['cpu_ms_per_req'] / med['None']['cpu_ms_per_req']:.3f} (CPU per request)")


if __name__ == "__main__":
    main()
