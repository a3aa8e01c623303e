#!/usr/bin/env python3
"""How a fresh Wharf's push CPU settles: gateway and silo as separate processes (split mode), ROUNDS chunked pushes of
a 512 MiB blob one after another, and per push each process's user and system CPU per GB and the share of it spent by
the runtime's tiered-compilation thread (re-compiling hot methods with full optimisation: JIT warm-up). The benchmark
(bench.py) measures young processes; this shows how much of its push figure is warm-up. Uses bench.py's helpers
(python3 stdlib). Knobs: ROUNDS (default 10), DLL / DLL_GATEWAY (another build), any DOTNET_* variable (runtime knobs).
    loadtest/bench/warmup.py
    ROUNDS=20 DOTNET_TieredPGO=0 loadtest/bench/warmup.py
"""
import glob
import hashlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BLOB = 512 * bench.MIB
CHUNK = 64 * bench.MIB


def times(pid):
    """(user, system) CPU seconds of a process, and the CPU seconds of its tiered-compilation thread(s)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    usr, sys_ = int(fields[11]) / tick, int(fields[12]) / tick
    jit = 0.0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as f:
                if not f.read().startswith(".NET Tiered"):
                    continue
            with open(f"{task}/stat") as f:
                t = f.read().rsplit(")", 1)[1].split()
            jit += (int(t[11]) + int(t[12])) / tick
        except OSError:
            pass  # a thread that ended
    return usr, sys_, jit


def main():
    rounds = int(os.environ.get("ROUNDS", "10"))
    tmp = tempfile.mkdtemp(prefix="wharf-warmup-")
    s = None
    try:
        s = bench.start_wharf_split(tmp)
        client = bench.Client(s.port)
        chunk = os.urandom(CHUNK)
        before = {role: times(p.pid) for role, p in s.measured}
        bench.log("after start: " + ", ".join(f"{r} {u + y:.1f} s CPU (JIT {j:.1f})" for r, (u, y, j) in before.items()))
        gb = BLOB / 1e9
        print(f"{'push':>4}  " + "  ".join(f"{r + ' usr/sys/JIT s/GB':>28}" for r, _ in s.measured) + f"  {'total s/GB':>10}")
        for i in range(rounds):
            marker = f"warmup{i}-{os.getpid()}".encode().ljust(64, b".")
            chunks = [marker + chunk[64:]] + [chunk] * (BLOB // CHUNK - 1)
            h = hashlib.sha256()
            for c in chunks:
                h.update(c)
            client.push_blob("bench/warmup", chunks, "sha256:" + h.hexdigest(), chunked=True)
            after = {role: times(p.pid) for role, p in s.measured}
            cells, total = [], 0.0
            for role, _ in s.measured:
                u, y, j = (a - b for a, b in zip(after[role], before[role]))
                total += u + y
                cells.append(f"{u / gb:>8.2f} /{y / gb:>6.2f} /{j / gb:>6.2f}")
            print(f"{i + 1:>4}  " + "  ".join(f"{c:>28}" for c in cells) + f"  {total / gb:>10.2f}", flush=True)
            before = after
    finally:
        if s:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
