#!/usr/bin/env python3
"""Backup and restore throughput of the operator CLI (`wharf backup`, `wharf restore`) between two all-in-ones on this
machine: loads ~1 GiB into registry A (BIG_IMAGES images of LAYERS random layers of LAYER_MIB MiB in 4 repositories, plus
SMALL_IMAGES small images in 2 more), then ROUNDS times `backup` of A into a fresh folder, and ROUNDS times `restore` of
that backup into a fresh, empty registry B. Reports MB/s (bytes of the backup folder / wall time), min / median / max,
the backup's size, and CPU seconds of the CLI (its rusage) and of the registry (/proc) per run. python3 stdlib only;
uses bench.py's server and client helpers. Needs `dotnet build Cluster.sln -c Release`.
    loadtest/bench/backup_throughput.py             # 8 x 4 x 32 MiB + 32 small images, 3 rounds
    SMOKE=1 loadtest/bench/backup_throughput.py     # seconds-long; figures mean nothing
The page cache is warm (the registry just wrote or read the bytes; no root to drop it): these are loopback and
CPU figures, not disk ones.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

BIG_IMAGES = bench.knob("BIG_IMAGES", 8, 2)
LAYERS = bench.knob("LAYERS", 4, 2)
LAYER_MIB = bench.knob("LAYER_MIB", 32, 1)
SMALL_IMAGES = bench.knob("SMALL_IMAGES", 32, 4)
ROUNDS = bench.knob("ROUNDS", 3, 1)
DLL_CLI = os.environ.get("DLL_CLI", os.path.join(bench.ROOT, "src/Cli/bin/Release/net10.0/Wharf.Cli.dll"))


def start(tmp, name):
    os.makedirs(tmp, exist_ok=True)
    s = bench.Server(name, tmp)
    s.port = bench.free_port()
    s.spawn("allinone", ["dotnet", bench.DLL_SILO, "--urls", f"http://127.0.0.1:{s.port}", f"--Wharf:DataPath={tmp}/data",
                         "--Logging:LogLevel:Default=Warning"], "wharf.log")
    s.wait_ready("/v2/")
    return s


def load(server):
    c = bench.Client(server.port)
    total = 0
    for i in range(BIG_IMAGES):
        layers = []
        for j in range(LAYERS):
            b, d = bench.random_blob(LAYER_MIB * bench.MIB, f"big-{i}-{j}-{time.time_ns()}")
            layers.append(([b], d, len(b)))
            total += len(b)
        c.push_image(f"bench/big{i % 4}", f"v{i}", layers)
    for i in range(SMALL_IMAGES):
        layers = []
        for j, size in enumerate((4 << 10, (16 + i) << 10)):
            b, d = bench.random_blob(size, f"small-{i}-{j}-{time.time_ns()}")
            layers.append(([b], d, len(b)))
            total += len(b)
        c.push_image(f"bench/small{i % 2}", f"v{i}", layers)
    return total


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def cli(server, args, log_path):
    """Runs the CLI against the server; returns wall seconds, the CLI's CPU seconds and the server's CPU seconds."""
    c0, t0 = server.cpu(), time.monotonic()
    with open(log_path, "a") as out:
        p = subprocess.Popen(["dotnet", DLL_CLI, "--registry", f"http://127.0.0.1:{server.port}", *args], stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"wharf {' '.join(args)} failed; see {log_path}")
    return wall, usage.ru_utime + usage.ru_stime, server.cpu() - c0


def summary(name, runs, size):
    mbs = sorted(size / 1e6 / r[0] for r in runs)
    bench.log(f"{name}: {mbs[0]:.0f} / {statistics.median(mbs):.0f} / {mbs[-1]:.0f} MB/s (min / median / max of {len(runs)}); "
              f"wall {statistics.median(r[0] for r in runs):.1f} s; CPU per run: CLI {statistics.median(r[1] for r in runs):.1f} s, "
              f"registry {statistics.median(r[2] for r in runs):.1f} s (medians)")


def main():
    tmp = tempfile.mkdtemp(prefix="wharf-backup-bench-")
    a = None
    try:
        a = start(os.path.join(tmp, "a"), "source")
        clock = time.monotonic()
        pushed = load(a)
        bench.log(f"loaded {pushed / bench.MIB:.0f} MiB of blobs ({BIG_IMAGES} x {LAYERS} x {LAYER_MIB} MiB + {SMALL_IMAGES} small images) "
                  f"in {time.monotonic() - clock:.1f} s")
        log_path = os.path.join(tmp, "cli.log")
        backups, restores, size, folder = [], [], 0, None
        for rnd in range(ROUNDS):
            if folder:
                shutil.rmtree(folder)
            folder = os.path.join(tmp, f"backup{rnd}")
            wall, cli_cpu, server_cpu = cli(a, ["backup", folder], log_path)
            size = folder_bytes(folder)
            backups.append((wall, cli_cpu, server_cpu))
            bench.log(f"backup {rnd + 1}: {size / 1e6:.0f} MB in {wall:.2f} s = {size / 1e6 / wall:.0f} MB/s; CPU: CLI {cli_cpu:.1f} s, registry {server_cpu:.1f} s")
        a.stop()
        a = None
        for rnd in range(ROUNDS):
            b = start(os.path.join(tmp, f"b{rnd}"), "target")
            try:
                wall, cli_cpu, server_cpu = cli(b, ["restore", folder], log_path)
            finally:
                b.stop()
                shutil.rmtree(os.path.join(tmp, f"b{rnd}"), ignore_errors=True)
            restores.append((wall, cli_cpu, server_cpu))
            bench.log(f"restore {rnd + 1}: {size / 1e6:.0f} MB in {wall:.2f} s = {size / 1e6 / wall:.0f} MB/s; CPU: CLI {cli_cpu:.1f} s, registry {server_cpu:.1f} s")
        bench.log(f"backup folder: {size:,} bytes for {pushed:,} bytes of blobs pushed")
        summary("backup", backups, size)
        summary("restore", restores, size)
    finally:
        if a:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
