#!/usr/bin/env python3
"""What one small-image push costs inside a Wharf: the calls between its processes, per image pushed.
Starts a Wharf (MODE=cluster: 3 silos with R = 3 and 2 gateways, the default; split; allinone), pushes SMALL_IMAGES
small images from SMALL_CONC clients once untimed, then again, and prints the wall time, the CPU per image and every
counter on each process's /metrics that moved by at least half a call per image in the measured round: log appends,
recoveries, Accept / Prepare / Forget calls between silos, grain activations, byte-service calls, allocations.
Uses bench.py's servers and client (python3 stdlib). Knobs: MODE, SMALL_IMAGES, SMALL_CONC, SMALL_LAYER_KIB, SMOKE=1;
DLL / DLL_GATEWAY for another build.
    loadtest/bench/push_calls.py                 # ~1 min on 2 cores
    MODE=allinone loadtest/bench/push_calls.py
"""
import os
import shutil
import sys
import tempfile
import urllib.request
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def counters(port):
    """Every counter and histogram count on a process's /metrics (no buckets)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "_bucket{" in line:
            continue
        key, _, value = line.rpartition(" ")
        if key.split("{")[0].endswith(("_total", "_count")):
            try:
                out[key] = float(value)
            except ValueError:
                pass
    return out


def main():
    mode = os.environ.get("MODE", "cluster")
    start = {"split": bench.start_wharf_split, "cluster": bench.start_wharf_cluster, "allinone": bench.start_wharf_allinone}[mode]
    tmp = tempfile.mkdtemp(prefix="wharf-push-calls-")
    server = None
    try:
        server = start(tmp)
        # Each process's own HTTP port (its /metrics): the --urls it was started with.
        ports = {role: int(p.args[p.args.index("--urls") + 1].rsplit(":", 1)[1]) for role, p in server.measured}
        with ProcessPoolExecutor(max_workers=bench.SMALL_CONC) as pool:
            list(pool.map(abs, range(bench.SMALL_CONC)))
            bench.measure_small_pushes(server, pool, "warm")
            before = {role: counters(port) for role, port in ports.items()}
            r = bench.measure_small_pushes(server, pool, "measured")
            after = {role: counters(port) for role, port in ports.items()}
        n = max(1, bench.SMALL_IMAGES // bench.SMALL_CONC) * bench.SMALL_CONC
        print(f"{mode}: {n} small images ({bench.SMALL_LAYER // 1024} KiB layer) from {bench.SMALL_CONC} clients: "
              f"{r['wall_s']:.2f} s, {r['cpu_ms_per_image']:.1f} ms of server CPU per image")
        print(f"{'process':10s} {'per image':>10s}  counter")
        for role in ports:
            for key, value in sorted(after[role].items()):
                moved = (value - before[role].get(key, 0)) / n
                if abs(moved) >= 0.5:
                    print(f"{role:10s} {moved:10.2f}  {key.replace('otel_scope_name=', '')[:160]}")
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
