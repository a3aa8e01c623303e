#!/usr/bin/env python3
"""Measures Wharf as separate processes (redis-server, 3 silos, 2 gateways on loopback) against the all-in-one.

  python3 loadtest/cluster/measure.py liveness [--defaults] [--runs N]
      kill -9 a silo: seconds until another silo's /admin/cluster shows it Dead; then start a fourth silo: seconds
      until it answers /readyz, is Joining in the placement view and Active in Orleans' membership.
      Test liveness settings (as the end-to-end tests) unless --defaults (Orleans' own defaults).
  python3 loadtest/cluster/measure.py throughput [--mb 100] [--clients 1,4] [--rounds 2] [--target cluster,allinone] [--warmup-mb 50]
      skopeo copy of a ~MB image (4 layers of random bytes, gzip with stored blocks; loadtest/allinone/bench.py)
      with C concurrent clients, push then pull; in the cluster the clients alternate between the two gateways.
      Reports wall MB/s, CPU seconds of all server processes (silos + gateways + redis, or the all-in-one) per GB,
      and the split between silos and gateways.

Python 3 stdlib only. Every process it starts is stopped by PID and its temporary folder removed on exit.
MB = 10^6 bytes, GB = 10^9 bytes.
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "loadtest", "allinone"))
import bench  # noqa: E402  (make-image, skopeo rounds' helpers, /proc CPU)

SILO = os.path.join(ROOT, "src/Silo/bin/Release/net10.0/Wharf.Silo.dll")
GATEWAY = os.path.join(ROOT, "src/Gateway/bin/Release/net10.0/Wharf.Gateway.dll")
LIVENESS = ["--Wharf:Liveness:ProbeTimeout=00:00:01", "--Wharf:Liveness:NumMissedProbesLimit=2",
            "--Wharf:Liveness:NumVotesForDeathDeclaration=1", "--Wharf:Liveness:TableRefreshTimeout=00:00:01",
            "--Wharf:Liveness:IAmAliveTablePublishTimeout=00:00:02"]
PROCS = []
WORK = tempfile.mkdtemp(prefix="wharf-cluster-measure-")


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(cmd, name):
    out = open(os.path.join(WORK, name + ".log"), "ab")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=WORK)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, wait=10):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_all():
    """SIGTERM to every Wharf process at once, SIGKILL after 10 s; redis-server (the first started) last."""
    wharf = [p for p in PROCS if p.args[0] == "dotnet"]
    for p in wharf:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in wharf:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for p in PROCS:
        stop(p)
    PROCS.clear()


@atexit.register
def cleanup():
    stop_all()
    shutil.rmtree(WORK, ignore_errors=True)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_http(url, timeout=60, proc=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[1]} exited with {proc.returncode} while starting")
        try:
            if get(url, 2)[0] == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s")


class Cluster:
    def __init__(self, liveness, replicas=3):
        self.liveness = liveness
        self.replicas = [f"--Wharf:Replication:Factor={replicas}", f"--Wharf:Replication:WriteQuorum={replicas // 2 + 1}"]
        self.redis_port = free_port()
        self.redis = start(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", WORK], f"redis-{self.redis_port}")
        time.sleep(0.3)
        self.membership = ["--Wharf:Membership:Provider=Redis", f"--Wharf:Membership:Address=127.0.0.1:{self.redis_port}"]
        self.silos, self.gateways = [], []

    def add_silo(self, wait=True):
        http, orleans = free_port(), free_port()
        data = os.path.join(WORK, f"silo-{http}")
        p = start(["dotnet", SILO, "--Wharf:Role=Silo", *self.membership, *self.liveness, *self.replicas, "--urls", f"http://127.0.0.1:{http}",
                   f"--Wharf:DataPath={data}", f"--Wharf:Bytes:Port={free_port()}", f"--Wharf:Orleans:SiloPort={orleans}",
                   f"--Wharf:Orleans:GatewayPort={free_port()}"], f"silo-{http}")
        silo = {"proc": p, "http": http, "endpoint": f"127.0.0.1:{orleans}", "data": data}
        self.silos.append(silo)
        if wait:
            wait_http(f"http://127.0.0.1:{http}/readyz", proc=p)
        return silo

    def add_gateway(self):
        http = free_port()
        args = ["--Wharf:Liveness:GatewayListRefreshPeriod=00:00:01"] if self.liveness else []
        p = start(["dotnet", GATEWAY, *self.membership, *args, "--urls", f"http://127.0.0.1:{http}"], f"gateway-{http}")
        self.gateways.append({"proc": p, "http": http})
        wait_http(f"http://127.0.0.1:{http}/readyz", proc=p)
        # ready once a grain call answers (404 for an unknown repository), not 503
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            try:
                get(f"http://127.0.0.1:{http}/v2/probe/tags/list")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway does not answer grain calls")

    def state(self, silo):
        return json.loads(get(f"http://127.0.0.1:{silo['http']}/admin/cluster")[1])

    def start_all(self, silos=3, gateways=2):
        for _ in range(silos):
            self.add_silo(wait=False)
        for s in self.silos:
            wait_http(f"http://127.0.0.1:{s['http']}/readyz", proc=s["proc"])
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            st = self.state(self.silos[0])
            if sum(m["status"] == "Active" for m in st["members"]) == silos and len(st["view"]["nodes"]) == silos:
                break
            time.sleep(0.1)
        for _ in range(gateways):
            self.add_gateway()

    def pids(self):
        return [p.pid for p in PROCS if p.poll() is None]


def liveness(a):
    rows = []
    for run in range(a.runs):
        c = Cluster([] if a.defaults else LIVENESS)
        c.start_all()
        victim, watcher = c.silos[2], c.silos[0]
        time.sleep(2)
        t0 = time.monotonic()
        victim["proc"].kill()
        dead = None
        while time.monotonic() - t0 < 600:
            statuses = [m["status"] for m in c.state(watcher)["members"] if m["endpoint"] == victim["endpoint"]]
            if statuses == ["Dead"]:
                dead = time.monotonic() - t0
                break
            time.sleep(0.05)
        t1 = time.monotonic()
        new = c.add_silo(wait=False)
        ready = wait_http(f"http://127.0.0.1:{new['http']}/readyz", proc=new["proc"])
        joined = None
        while time.monotonic() - t1 < 120:
            st = c.state(watcher)
            in_view = [n for n in st["view"]["nodes"] if n["siloEndpoint"] == new["endpoint"]]
            active = any(m["endpoint"] == new["endpoint"] and m["status"] == "Active" for m in st["members"])
            if in_view and in_view[0]["state"] == 4 and active:
                joined = time.monotonic() - t1
                break
            time.sleep(0.05)
        row = {"settings": "orleans-defaults" if a.defaults else "test", "run": run + 1, "load1": os.getloadavg()[0], "dead_s": round(dead, 2),
               "new_silo_readyz_s": round(ready, 2), "new_silo_joining_and_active_s": round(joined, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        stop_all()
    for k in ("dead_s", "new_silo_readyz_s", "new_silo_joining_and_active_s"):
        v = [r[k] for r in rows]
        print(f"{k}: median {statistics.median(v):.2f} (min {min(v):.2f}, max {max(v):.2f}) over {len(v)} run(s)")


def cpu_of(pids, part=None):
    """utime + stime of the processes (part 0: utime only, 1: stime only), in seconds."""
    total = 0.0
    for pid in pids:
        try:
            split = bench.proc_cpu_split(pid)
            total += sum(split) if part is None else split[part]
        except OSError:
            pass
    return total


def skopeo_round(mode, images, hosts, prefix, pids, groups):
    cpu0 = {k: cpu_of(v) for k, v in groups.items()}
    sys0 = cpu_of([pid for v in groups.values() for pid in v], 1)
    t0 = time.monotonic()
    procs = []
    for i, img in enumerate(images):
        reg = hosts[i % len(hosts)]
        if mode == "push":
            cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{img}:bench", f"docker://{reg}/{prefix}-{i}:bench"]
        else:
            # pull through the other gateway than the push went through
            reg = hosts[(i + 1) % len(hosts)]
            dest = img + "-pulled"
            cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers",
                   f"docker://{reg}/{prefix}-{i}:bench", f"oci:{dest}:bench"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    errors = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            errors.append(out.decode(errors="replace")[-300:])
    wall = time.monotonic() - t0
    cpu = {k: cpu_of(v) - cpu0[k] for k, v in groups.items()}
    sys_s = cpu_of([pid for v in groups.values() for pid in v], 1) - sys0
    if mode == "pull":
        for img in images:
            if not errors and bench.layout_digests(img) != bench.layout_digests(img + "-pulled"):
                errors.append(f"{img}: pulled blobs differ")
            shutil.rmtree(img + "-pulled", ignore_errors=True)
    total = sum(bench.layout_bytes(i) for i in images)
    return {"op": mode, "clients": len(images), "bytes": total, "wall_s": round(wall, 2), "MB_s": round(total / 1e6 / wall, 1),
            "cpu_s": {k: round(v, 2) for k, v in cpu.items()}, "sys_s": round(sys_s, 2),
            "cpu_s_per_GB": round(sum(cpu.values()) / (total / 1e9), 2), "errors": errors}


def throughput(a):
    rows = []
    for target in a.target.split(","):
        if target == "cluster":
            c = Cluster(LIVENESS, a.replicas)
            c.start_all()
            hosts = [f"127.0.0.1:{g['http']}" for g in c.gateways]
            groups = {"silos": [s["proc"].pid for s in c.silos], "gateways": [g["proc"].pid for g in c.gateways],
                      "redis": [c.redis.pid]}
        else:
            port = free_port()
            p = start(["dotnet", SILO, "--urls", f"http://127.0.0.1:{port}", f"--Wharf:DataPath={WORK}/allinone"], "allinone")
            wait_http(f"http://127.0.0.1:{port}/v2/", proc=p)
            hosts = [f"127.0.0.1:{port}"]
            groups = {"allinone": [p.pid]}
        # warm-up, not measured: JIT tiering in five processes takes a few hundred MB (the first 100 MB rounds
        # cost 2-4x the CPU per GB of later ones); 4 clients so both gateways and every silo take part
        warm = [os.path.join(WORK, f"warm{i}") for i in range(4)]
        for d in warm:
            bench.cmd_make_image(argparse.Namespace(dir=d, mb=a.warmup_mb, layers=4, tag="bench"))
        for _ in range(2):
            skopeo_round("push", warm, hosts, f"warm-{target}-{_}", None, groups)
            skopeo_round("pull", warm, hosts, f"warm-{target}-{_}", None, groups)
        for d in warm:
            shutil.rmtree(d)
        for rnd in range(a.rounds):
            for n in [int(x) for x in a.clients.split(",")]:
                images = []
                for i in range(n):
                    d = os.path.join(WORK, f"img-{target}-{rnd}-{n}-{i}")
                    bench.cmd_make_image(argparse.Namespace(dir=d, mb=a.mb, layers=4, tag="bench"))
                    images.append(d)
                subprocess.run(["sync"])
                for mode in ("push", "pull"):
                    r = skopeo_round(mode, images, hosts, f"r{rnd}-c{n}", None, groups)
                    r.update(target=target, round=rnd + 1, load1=os.getloadavg()[0])
                    print(json.dumps(r), flush=True)
                    rows.append(r)
                for d in images:
                    shutil.rmtree(d, ignore_errors=True)
        stop_all()
    print("\ntarget     op    clients  MB/s (median, min-max)   server CPU s/GB (median)   of which sys   CPU split (median s)")
    keys = sorted({(r["target"], r["op"], r["clients"]) for r in rows}, key=lambda k: (k[0], k[1] != "push", k[2]))
    for k in keys:
        rs = [r for r in rows if (r["target"], r["op"], r["clients"]) == k]
        mbs = [r["MB_s"] for r in rs]
        per = [r["cpu_s_per_GB"] for r in rs]
        split = {g: round(statistics.median(r["cpu_s"][g] for r in rs), 1) for g in rs[0]["cpu_s"]}
        sys_per = statistics.median(r["sys_s"] / (r["bytes"] / 1e9) for r in rs)
        errs = sum(len(r["errors"]) for r in rs)
        print(f"{k[0]:<10} {k[1]:<5} {k[2]:>7}  {statistics.median(mbs):7.1f} ({min(mbs):.0f}-{max(mbs):.0f})"
              f"        {statistics.median(per):6.2f}                   {sys_per:6.2f}       {split}{'  ERRORS ' + str(errs) if errs else ''}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("liveness")
    s.add_argument("--defaults", action="store_true", help="Orleans' default failure detection")
    s.add_argument("--runs", type=int, default=3)
    s.set_defaults(f=liveness)
    s = sub.add_parser("throughput")
    s.add_argument("--mb", type=int, default=100)
    s.add_argument("--clients", default="1,4")
    s.add_argument("--rounds", type=int, default=2)
    s.add_argument("--target", default="cluster,allinone")
    s.add_argument("--warmup-mb", type=int, default=50, help="per warm-up image (4 images, pushed and pulled twice)")
    s.add_argument("--replicas", type=int, default=3, help="R of the cluster (W is a majority)")
    s.set_defaults(f=throughput)
    a = p.parse_args()
    for f in (SILO, GATEWAY):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing: dotnet build Cluster.sln -c Release")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    a.f(a)


if __name__ == "__main__":
    main()
