#!/usr/bin/env python3
"""Helpers for measure.sh (python3 stdlib only): build OCI layouts, drive skopeo, push/pull big and small blobs
against a running Wharf all-in-one, sample the server's CPU and RSS from /proc, and print the final tables.

Every measuring subcommand appends one JSON object per figure to --out (a JSON-lines file).
Units: MB = 10^6 bytes, GB = 10^9 bytes, MiB = 2^20 bytes (RSS)."""
import argparse
import hashlib
import http.client
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import zlib

CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc
def proc_cpu_split(pid):
    """(utime, stime) of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK  # fields 14 and 15 of stat(5)


def proc_cpu(pid):
    """utime + stime of pid, in seconds."""
    return sum(proc_cpu_split(pid))


def cpu_fields(pid, before):
    """The server's CPU since before (a proc_cpu_split result), total and split."""
    u, s = proc_cpu_split(pid)
    return {"server_cpu_s": round(u + s - sum(before), 3), "server_user_s": round(u - before[0], 3), "server_sys_s": round(s - before[1], 3)}


def proc_status(pid, key):
    """A kB figure from /proc/pid/status (VmRSS, VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid):
    """Resets VmHWM to the current RSS (clear_refs 5, Linux >= 4.0). Returns whether it worked."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class RssSampler(threading.Thread):
    """Samples VmRSS of pid every interval seconds; .peak is the largest sample (MiB)."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.samples.append((time.monotonic(), proc_status(self.pid, "VmRSS")))
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()
        self.samples.append((time.monotonic(), proc_status(self.pid, "VmRSS")))
        return max(s[1] for s in self.samples)


def emit(out, **record):
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
    print("  " + json.dumps(record), flush=True)


# ---------------------------------------------------------------- free port
def cmd_free_port(_):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


# ---------------------------------------------------------------- OCI layout
def write_blob(layout, data_iter):
    """Writes a blob from an iterator of byte chunks into layout/blobs/sha256; returns (digest, size)."""
    tmp = os.path.join(layout, "blobs", "sha256", ".tmp")
    h, size = hashlib.sha256(), 0
    with open(tmp, "wb") as f:
        for chunk in data_iter:
            h.update(chunk)
            f.write(chunk)
            size += len(chunk)
    os.rename(tmp, os.path.join(layout, "blobs", "sha256", h.hexdigest()))
    return "sha256:" + h.hexdigest(), size


def random_tar(size, name):
    """An uncompressed tar holding one file of size random (incompressible) bytes."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    yield info.tobuf(format=tarfile.USTAR_FORMAT)
    left = size
    while left > 0:
        n = min(left, 8 << 20)
        yield os.urandom(n)
        left -= n
    yield b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024


def gzip_stored(chunks, diff_hash):
    """gzip with stored (level 0) deflate blocks: a real gzip layer that costs nothing to make, so skopeo moves it
    as-is. (skopeo gzips uncompressed layers before pushing to a registry, which would measure its compressor.)"""
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    for c in chunks:
        diff_hash.update(c)
        out = z.compress(c)
        if out:
            yield out
    yield z.flush()


def cmd_make_image(a):
    layout = a.dir
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    per_layer = a.mb * 1_000_000 // a.layers
    layers, diff_ids = [], []
    for i in range(a.layers):
        diff = hashlib.sha256()
        d, s = write_blob(layout, gzip_stored(random_tar(per_layer, f"layer{i}.bin"), diff))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
        diff_ids.append("sha256:" + diff.hexdigest())
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    cd, cs = write_blob(layout, [config])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": layers,
    }).encode()
    md, ms = write_blob(layout, [manifest])
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": a.tag}}]}, f)


def layout_bytes(layout):
    """Bytes of every blob an image layout holds (layers, config, manifest)."""
    d = os.path.join(layout, "blobs", "sha256")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if not f.startswith("."))


def layout_digests(layout):
    return sorted(f for f in os.listdir(os.path.join(layout, "blobs", "sha256")) if not f.startswith("."))


# ---------------------------------------------------------------- skopeo rounds
def cmd_skopeo_round(a):
    images = a.images.split(",")
    reg = f"127.0.0.1:{a.port}"
    procs, targets = [], []
    total = sum(layout_bytes(img) for img in images)
    cpu0, ccpu0, t0 = proc_cpu_split(a.pid), children_cpu(), time.monotonic()
    for i, img in enumerate(images):
        repo = f"{a.repo_prefix}-{i}"
        if a.mode == "push":
            cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{img}:{a.tag}", f"docker://{reg}/{repo}:{a.tag}"]
        else:
            dest = os.path.join(a.workdir, f"pulled-{a.repo_prefix}-{i}")
            targets.append((img, dest))
            cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers", f"docker://{reg}/{repo}:{a.tag}", f"oci:{dest}:{a.tag}"]
        procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    errors = []
    for cmd, p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            errors.append(f"{' '.join(cmd)}: exit {p.returncode}: {out.decode(errors='replace').strip()[-400:]}")
    wall = time.monotonic() - t0
    cpu, ccpu1 = cpu_fields(a.pid, cpu0), children_cpu()
    for img, dest in targets:  # skopeo verified every digest; also check it got every blob we pushed
        if not errors and layout_digests(img) != layout_digests(dest):
            errors.append(f"pulled layout {dest} differs from {img}")
        subprocess.run(["rm", "-rf", dest])
    emit(a.out, kind="skopeo", variant=a.variant, run=a.run, op=a.mode, clients=len(images), bytes=total,
         wall_s=round(wall, 3), **cpu, client_cpu_s=round(ccpu1 - ccpu0, 3),
         errors=len(errors), error=errors[0] if errors else None)
    if errors:
        print("\n".join(errors), file=sys.stderr)


# ---------------------------------------------------------------- big blob
def check(resp, want, what):
    body = resp.read()
    if resp.status not in want:
        raise RuntimeError(f"{what}: HTTP {resp.status}: {body[:300]!r}")
    return resp


def resolve(location, base_path):
    u = urllib.parse.urlsplit(location)
    return u.path + (("?" + u.query) if u.query else "") if u.scheme else location


def push_chunked(conn, repo, size, chunk, salt):
    """POST, then PATCH chunks with Content-Range, then PUT ?digest=. Returns the digest."""
    conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    r = check(conn.getresponse(), (202,), "POST upload")
    loc = resolve(r.getheader("Location"), "")
    base = bytearray(os.urandom(chunk))
    h = hashlib.sha256()
    off = 0
    while off < size:
        n = min(chunk, size - off)
        base[:16] = salt + off.to_bytes(8, "big")  # every chunk, and every run, different
        body = memoryview(base)[:n]
        h.update(body)
        conn.request("PATCH", loc, body=body, headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(n),
            "Content-Range": f"{off}-{off + n - 1}"})
        r = check(conn.getresponse(), (202,), f"PATCH at {off}")
        loc = resolve(r.getheader("Location"), "")
        off += n
    digest = "sha256:" + h.hexdigest()
    sep = "&" if "?" in loc else "?"
    conn.request("PUT", f"{loc}{sep}digest={digest}", headers={"Content-Length": "0"})
    check(conn.getresponse(), (201,), "PUT commit")
    return digest


def pull_verify(conn, repo, digest, size):
    conn.request("GET", f"/v2/{repo}/blobs/{digest}")
    r = conn.getresponse()
    if r.status != 200:
        raise RuntimeError(f"GET blob: HTTP {r.status}: {r.read()[:300]!r}")
    h, got = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    while True:
        n = r.readinto(mv)
        if not n:
            break
        h.update(mv[:n])
        got += n
    if got != size or "sha256:" + h.hexdigest() != digest:
        raise RuntimeError(f"GET blob: got {got} bytes, sha256 {h.hexdigest()}, wanted {size} / {digest}")


def cmd_bigblob(a):
    size, chunk = a.mib << 20, a.chunk_mib << 20
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)
    salt = os.urandom(8)
    # Warm-up: one small chunked push and pull, so JIT and first-use allocations are not counted as growth.
    wd = push_chunked(conn, "warmup", 8 << 20, 4 << 20, salt)
    pull_verify(conn, "warmup", wd, 8 << 20)
    time.sleep(1)
    for op in ("push", "pull", "pull-curl"):
        rss0 = proc_status(a.pid, "VmRSS")
        hwm_reset = reset_hwm(a.pid)
        hwm0 = proc_status(a.pid, "VmHWM")
        sampler = RssSampler(a.pid)
        sampler.start()
        cpu0, c0, cc0, t0 = proc_cpu_split(a.pid), self_cpu(), children_cpu(), time.monotonic()
        err = None
        try:
            if op == "push":
                digest = push_chunked(conn, a.repo, size, chunk, salt)
            elif op == "pull":
                pull_verify(conn, a.repo, digest, size)
            else:  # the same GET by curl into /dev/null: the server's speed without python's client in the way
                r = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}",
                                    f"http://127.0.0.1:{a.port}/v2/{a.repo}/blobs/{digest}"], capture_output=True, text=True)
                if r.returncode != 0 or r.stdout.strip() != str(size):
                    raise RuntimeError(f"curl GET: exit {r.returncode}, {r.stdout.strip()} bytes: {r.stderr.strip()}")
        except Exception as e:  # report, do not hide
            err = str(e)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=600)
        wall = time.monotonic() - t0
        cpu, c1 = cpu_fields(a.pid, cpu0), self_cpu() + children_cpu() - cc0
        peak = sampler.stop()
        time.sleep(0.5)
        emit(a.out, kind="big", variant=a.variant, run=a.run, op=op, bytes=size, chunk=chunk if op == "push" else None,
             wall_s=round(wall, 3), **cpu, client_cpu_s=round(c1 - c0, 3),
             rss_before_mib=round(rss0, 1), rss_peak_sampled_mib=round(peak, 1),
             hwm_before_mib=round(hwm0, 1), hwm_after_mib=round(proc_status(a.pid, "VmHWM"), 1), hwm_reset=hwm_reset,
             rss_after_mib=round(proc_status(a.pid, "VmRSS"), 1), samples=len(sampler.samples),
             errors=1 if err else 0, error=err)
        if err:
            print(err, file=sys.stderr)
            if op == "push":
                return


# ---------------------------------------------------------------- small blobs
def small_worker(port, repo, size, count, barrier, results):
    blobs = []
    for _ in range(count):
        data = os.urandom(size)
        blobs.append(("sha256:" + hashlib.sha256(data).hexdigest(), data))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out = {}
    for op in ("push", "pull"):
        lat, errors, first = [], 0, None
        barrier.wait()
        c0 = self_cpu()
        for digest, data in blobs:
            t = time.monotonic()
            try:
                if op == "push":
                    conn.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", body=data,
                                 headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
                    r = conn.getresponse()
                    body = r.read()
                    ok = r.status == 201
                else:
                    conn.request("GET", f"/v2/{repo}/blobs/{digest}")
                    r = conn.getresponse()
                    body = r.read()
                    ok = r.status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == digest
                if not ok:
                    errors += 1
                    first = first or f"{op} {digest}: HTTP {r.status} {body[:200]!r}"
            except Exception as e:
                errors += 1
                first = first or f"{op} {digest}: {e}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            lat.append(time.monotonic() - t)
        out[op] = {"lat": lat, "errors": errors, "error": first, "cpu": self_cpu() - c0}
        barrier.wait()
    results.put(out)


def cmd_small(a):
    ctx = mp.get_context("fork")
    # Warm-up (not measured): JIT and first-use costs of both routes, on one connection.
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)
    for i in range(200):
        data = os.urandom(4096 if i % 2 else 256 << 10)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        conn.request("POST", f"/v2/warmup/blobs/uploads/?digest={digest}", body=data,
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        check(conn.getresponse(), (201,), "warm-up POST")
        conn.request("GET", f"/v2/warmup/blobs/{digest}")
        check(conn.getresponse(), (200,), "warm-up GET")
    conn.close()
    for size_text in a.sizes.split(","):
        size = parse_size(size_text)
        n = max(a.conc, min(a.n, (a.max_mb << 20) // size))
        per = [n // a.conc + (1 if i < n % a.conc else 0) for i in range(a.conc)]
        barrier = ctx.Barrier(a.conc + 1)
        results = ctx.Queue()
        procs = [ctx.Process(target=small_worker, args=(a.port, f"small-{a.variant}-{size}-{i}", size, per[i], barrier, results))
                 for i in range(a.conc)]
        for p in procs:
            p.start()
        marks = {}
        for op in ("push", "pull"):
            barrier.wait()
            cpu0, t0 = proc_cpu_split(a.pid), time.monotonic()
            barrier.wait()
            marks[op] = (time.monotonic() - t0, cpu_fields(a.pid, cpu0))
        outs = [results.get() for _ in procs]
        for p in procs:
            p.join()
        for op in ("push", "pull"):
            lat = sorted(x for o in outs for x in o[op]["lat"])
            errs = sum(o[op]["errors"] for o in outs)
            first = next((o[op]["error"] for o in outs if o[op]["error"]), None)
            wall, cpu = marks[op]
            emit(a.out, kind="small", variant=a.variant, run=a.run, op=op, size=size, n=n, conc=a.conc, bytes=n * size,
                 wall_s=round(wall, 3), **cpu,
                 client_cpu_s=round(sum(o[op]["cpu"] for o in outs), 3),
                 p50_ms=round(lat[len(lat) // 2] * 1000, 2), p99_ms=round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2),
                 errors=errs, error=first)


def parse_size(t):
    t = t.strip().upper()
    for suffix, mul in (("KIB", 1 << 10), ("MIB", 1 << 20), ("K", 1 << 10), ("M", 1 << 20)):
        if t.endswith(suffix):
            return int(t[:-len(suffix)]) * mul
    return int(t)


# ---------------------------------------------------------------- disk reference
def cmd_disk(a):
    """Sequential write of --mib MiB in 1 MiB writes then one fsync, in --dir: what the disk gives right now."""
    path = os.path.join(a.dir, "disk-reference.tmp")
    buf = os.urandom(1 << 20)
    t0 = time.monotonic()
    with open(path, "wb", buffering=0) as f:
        for _ in range(a.mib):
            f.write(buf)
        os.fsync(f.fileno())
    wall = time.monotonic() - t0
    os.unlink(path)
    emit(a.out, kind="disk", run=a.run, bytes=a.mib << 20, wall_s=round(wall, 3), errors=0, error=None)


# ---------------------------------------------------------------- report
def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else float("nan")


def spread(values, fmt):
    v = sorted(x for x in values if x is not None)
    if not v:
        return "-"
    m = fmt.format(statistics.median(v))
    return m if len(v) == 1 else f"{m} ({fmt.format(v[0])}–{fmt.format(v[-1])})"


def usersys(rs):
    """Median user and system CPU seconds per GB of the server, as 'u/s'."""
    if not all("server_user_s" in r for r in rs):
        return "-"
    return f"{med([r['server_user_s'] / (r['bytes'] / 1e9) for r in rs]):.2f}/{med([r['server_sys_s'] / (r['bytes'] / 1e9) for r in rs]):.2f}"


def human(size):
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def cmd_report(a):
    rows = []
    for i, path in enumerate(a.results):  # several files (separate invocations) may be reported together
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                r["run"] = (i, r["run"])
                rows.append(r)
    runs = sorted({r["run"] for r in rows})
    print(f"\nWharf all-in-one, {len(runs)} run(s); each figure is the median (min–max) over runs, and for skopeo over rounds too.")
    print("MB = 10^6 bytes, GB = 10^9 bytes; CPU = utime+stime seconds; server = the Wharf process, client = skopeo / python.\n")

    def group(kind, keyf):
        g = {}
        for r in rows:
            if r["kind"] == kind:
                g.setdefault(keyf(r), []).append(r)
        return g

    disk = [r for r in rows if r["kind"] == "disk"]
    if disk:
        print(f"Disk reference: sequential write of {human(disk[0]['bytes'])} + fsync in the temp folder: "
              f"{spread([r['bytes'] / r['wall_s'] / 1e6 for r in disk], '{:.0f}')} MB/s\n")

    sk = group("skopeo", lambda r: (r["variant"], r["op"], r["clients"]))
    if sk:
        print("A/B. skopeo copy of a ~{:.0f} MB image (tar layers of random bytes, gzip with stored blocks), per round".format(
            med([r["bytes"] / r["clients"] for r in rows if r["kind"] == "skopeo"]) / 1e6))
        print(f"{'op':5} {'clients':>7} {'n':>3} | {'wall s':>20} | {'MB/s (all clients)':>22} | {'server CPU s/GB':>20} | {'srv user/sys':>12} | {'client CPU s/GB':>20} | errors")
        for (variant, op, c), rs in sorted(sk.items(), key=lambda kv: (kv[0][0], kv[0][1] != "push", kv[0][2])):
            print(f"{op:5} {c:>7} {len(rs):>3} | {spread([r['wall_s'] for r in rs], '{:.2f}'):>20} | "
                  f"{spread([r['bytes'] / r['wall_s'] / 1e6 for r in rs], '{:.0f}'):>22} | "
                  f"{spread([r['server_cpu_s'] / (r['bytes'] / 1e9) for r in rs], '{:.2f}'):>20} | {usersys(rs):>12} | "
                  f"{spread([r['client_cpu_s'] / (r['bytes'] / 1e9) for r in rs], '{:.2f}'):>20} | {sum(r['errors'] for r in rs)}")
        print()

    big = group("big", lambda r: (r["variant"], r["op"]))
    if big:
        size = rows[[r["kind"] for r in rows].index("big")]["bytes"]
        print(f"C. One {human(size)} blob: chunked push (POST, PATCH × chunk, PUT ?digest=) and GET (sha256 verified)")
        print(f"{'op':9} | {'MB/s':>16} | {'srv CPU s/GB':>16} | {'srv user/sys':>12} | {'cli CPU s/GB':>16} | {'RSS before MiB':>16} | {'peak RSS (100 ms) MiB':>22} | {'VmHWM after MiB':>16} | {'RSS after MiB':>14} | errors")
        for (variant, op), rs in sorted(big.items(), key=lambda kv: ("push", "pull", "pull-curl").index(kv[0][1])):
            print(f"{op:9} | {spread([r['bytes'] / r['wall_s'] / 1e6 for r in rs], '{:.0f}'):>16} | "
                  f"{spread([r['server_cpu_s'] / (r['bytes'] / 1e9) for r in rs], '{:.2f}'):>16} | {usersys(rs):>12} | "
                  f"{spread([r['client_cpu_s'] / (r['bytes'] / 1e9) for r in rs], '{:.2f}'):>16} | "
                  f"{spread([r['rss_before_mib'] for r in rs], '{:.0f}'):>16} | "
                  f"{spread([r['rss_peak_sampled_mib'] for r in rs], '{:.0f}'):>22} | "
                  f"{spread([r['hwm_after_mib'] for r in rs], '{:.0f}'):>16} | "
                  f"{spread([r['rss_after_mib'] for r in rs], '{:.0f}'):>14} | {sum(r['errors'] for r in rs)}")
        print("   peak RSS growth (peak sample − RSS before), median: " + ", ".join(
            f"{op} {med([r['rss_peak_sampled_mib'] - r['rss_before_mib'] for r in rs]):.0f} MiB" for (_, op), rs in sorted(big.items(), key=lambda kv: ("push", "pull", "pull-curl").index(kv[0][1]))))
        print("   client CPU: push = python (hashing + sending), pull = python (receiving + sha256), pull-curl = curl into /dev/null")
        print()

    sm = group("small", lambda r: (r["variant"], r["op"], r["size"]))
    if sm:
        conc = rows[[r["kind"] for r in rows].index("small")]["conc"]
        print(f"D. Small blobs: monolithic POST ?digest= then GET (sha256 verified), {conc} concurrent clients, each its own repository")
        print("   variant 'inline' = the build as committed (InlineThreshold 128 KiB); 'noinline' = a temporary copy with InlineThreshold = 0")
        print(f"{'variant':9} {'op':5} {'size':>8} {'n':>5} | {'req/s':>18} | {'MB/s':>16} | {'p50 ms':>8} | {'p99 ms':>8} | {'srv CPU ms/req':>14} | {'cli CPU ms/req':>14} | errors")
        for (variant, op, size), rs in sorted(sm.items(), key=lambda kv: (kv[0][1] != "push", kv[0][2], kv[0][0])):
            print(f"{variant:9} {op:5} {human(size):>8} {rs[0]['n']:>5} | "
                  f"{spread([r['n'] / r['wall_s'] for r in rs], '{:.0f}'):>18} | "
                  f"{spread([r['bytes'] / r['wall_s'] / 1e6 for r in rs], '{:.1f}'):>16} | "
                  f"{med([r['p50_ms'] for r in rs]):>8.2f} | {med([r['p99_ms'] for r in rs]):>8.2f} | "
                  f"{med([r['server_cpu_s'] * 1000 / r['n'] for r in rs]):>14.2f} | "
                  f"{med([r['client_cpu_s'] * 1000 / r['n'] for r in rs]):>14.2f} | {sum(r['errors'] for r in rs)}")
        print()
    errs = [r for r in rows if r.get("errors")]
    if errs:
        print(f"ERRORS in {len(errs)} measurement(s); first: {errs[0].get('error')}")
    else:
        print("No errors.")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port").set_defaults(f=cmd_free_port)
    s = sub.add_parser("make-image")
    s.add_argument("--dir", required=True); s.add_argument("--mb", type=int, default=100)
    s.add_argument("--layers", type=int, default=4); s.add_argument("--tag", default="bench")
    s.set_defaults(f=cmd_make_image)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pid", type=int, required=True); common.add_argument("--port", type=int, required=True)
    common.add_argument("--out", required=True); common.add_argument("--run", type=int, default=1)
    common.add_argument("--variant", default="inline")
    s = sub.add_parser("skopeo-round", parents=[common])
    s.add_argument("--mode", choices=("push", "pull"), required=True); s.add_argument("--images", required=True)
    s.add_argument("--repo-prefix", required=True); s.add_argument("--tag", default="bench")
    s.add_argument("--workdir", required=True)
    s.set_defaults(f=cmd_skopeo_round)
    s = sub.add_parser("bigblob", parents=[common])
    s.add_argument("--mib", type=int, default=2048); s.add_argument("--chunk-mib", type=int, default=64)
    s.add_argument("--repo", default="big")
    s.set_defaults(f=cmd_bigblob)
    s = sub.add_parser("small", parents=[common])
    s.add_argument("--sizes", default="4K,16K,64K,128K,256K,1M"); s.add_argument("--n", type=int, default=1000)
    s.add_argument("--max-mb", type=int, default=512); s.add_argument("--conc", type=int, default=8)
    s.set_defaults(f=cmd_small)
    s = sub.add_parser("disk")
    s.add_argument("--dir", required=True); s.add_argument("--mib", type=int, default=1024)
    s.add_argument("--out", required=True); s.add_argument("--run", type=int, default=1)
    s.set_defaults(f=cmd_disk)
    s = sub.add_parser("report")
    s.add_argument("--results", required=True, nargs="+")
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
