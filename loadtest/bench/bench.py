#!/usr/bin/env python3
"""Wharf and CNCF Distribution side by side on this machine (python3 standard library + wrk).

Starts Wharf (all-in-one; gateway + silo as separate processes over Redis; or 3 silos with R = 3 and 2 gateways:
MODES="allinone split cluster") and Distribution (Debian's
docker-registry, filesystem storage) on loopback with temporary data folders, loads the same data into both
and measures in alternating rounds; prints each figure for both and the ratio Wharf / Distribution.
See loadtest/README.md ("The side-by-side benchmark"). Every process it starts is stopped by its PID.
"""
import hashlib, http.client, json, os, random, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMOKE = os.environ.get("SMOKE", "0") == "1"


def knob(name, full, smoke):
    v = os.environ.get(name)
    if v not in (None, ""):
        return type(full)(v)
    return smoke if SMOKE else full


ROUNDS = knob("ROUNDS", 3, 1)
DURATION = knob("DURATION", 10, 1)            # seconds per wrk measurement
CONNS = knob("CONNS", 64, 64)
THREADS = knob("WRK_THREADS", 2, 2)
WS_BLOBS = knob("WS_BLOBS", 1024, 8)          # 1 MiB blobs in the working set (HEAD and the cold-set GET)
SMALL_IMAGES = knob("SMALL_IMAGES", 400, 16)  # images in the concurrent small-image push
SMALL_CONC = knob("SMALL_CONC", 8, 4)
SMALL_LAYER = knob("SMALL_LAYER_KIB", 64, 16) * 1024
IMAGE_MB = knob("IMAGE_MB", 100, 4)           # the big image: IMAGE_LAYERS layers totalling IMAGE_MB MB
IMAGE_LAYERS = knob("IMAGE_LAYERS", 4, 2)
BIG_MIB = knob("BIG_MIB", 1024, 32)           # the RSS push
CHUNK_MIB = knob("CHUNK_MIB", 64, 8)
WARM_PUSHES = knob("WARM_PUSHES", 1, 0)       # untimed rounds of pushes per server before the measured rounds
MODES = os.environ.get("MODES", "allinone").split()
DLL_SILO = os.environ.get("DLL", os.path.join(ROOT, "src/Silo/bin/Release/net10.0/Wharf.Silo.dll"))
DLL_GATEWAY = os.environ.get("DLL_GATEWAY", os.path.join(ROOT, "src/Gateway/bin/Release/net10.0/Wharf.Gateway.dll"))
REGISTRY = os.environ.get("DISTRIBUTION", "/usr/bin/docker-registry")
RESULTS = os.environ.get("RESULTS", "")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MIB = 1 << 20


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


_handed_out = set()


def free_port():
    """A loopback port nobody listens on, below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel
    hands out (bind to 0) can be taken by an outgoing connection (wrk's, a silo's) before the server binds it, and
    a server that picks its own ports draws from that range too. Never the same port twice in one run."""
    for _ in range(500):
        port = random.randrange(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ /proc
def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# ------------------------------------------------------------------ servers
class Server:
    """A registry under test: one or more processes (CPU and RSS are read per process) and a base URL."""

    def __init__(self, name, tmp):
        self.name, self.tmp, self.procs, self.port = name, tmp, [], 0
        self.ports = []  # more than one: gateways that wrk loads side by side (self.port is the first)
        self.logs = {}  # role -> log file

    @property
    def front(self):
        return self.ports or [self.port]

    def spawn(self, role, args, log_name):
        out = open(os.path.join(self.tmp, log_name), "w")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)
        self.procs.append((role, p))
        self.logs[role] = out.name
        return p

    def log_tail(self, role, lines=30):
        """The last lines a process wrote, for an error message (the temporary folder is gone by the time one reads it)."""
        try:
            with open(self.logs[role], errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (KeyError, OSError):
            return ""

    @property
    def measured(self):
        """The processes whose CPU and RSS count (not Redis)."""
        return [(r, p) for r, p in self.procs if r != "redis"]

    def cpu(self):
        return sum(cpu_s(p.pid) for _, p in self.measured)

    def wait_ready(self, path="/v2/", timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for role, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{self.name}: {role} exited with {p.returncode}; the end of its log:\n{self.log_tail(role)}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", path)
                r = c.getresponse(); r.read(); c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer on :{self.port}")

    def stop(self):
        for role, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill(); p.wait()
        self.procs = []


def start_wharf_allinone(tmp):
    s = Server("wharf", tmp)
    s.port = free_port()
    s.spawn("allinone", ["dotnet", DLL_SILO, "--urls", f"http://127.0.0.1:{s.port}", f"--Wharf:DataPath={tmp}/data",
                         "--Logging:LogLevel:Default=Warning"], "wharf.log")
    s.wait_ready()
    return s


def start_wharf_split(tmp):
    """Gateway and silo as separate processes, Redis membership (R = 1)."""
    s = Server("wharf", tmp)
    rport = free_port()
    s.spawn("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], "redis.log")
    time.sleep(0.3)
    m = ["--Wharf:Membership:Provider=Redis", f"--Wharf:Membership:Address=127.0.0.1:{rport}", "--Logging:LogLevel:Default=Warning"]
    silo_http = free_port()
    s.spawn("silo", ["dotnet", DLL_SILO, "--Wharf:Role=Silo", *m, "--urls", f"http://127.0.0.1:{silo_http}",
                     f"--Wharf:DataPath={tmp}/silo", f"--Wharf:Bytes:Port={free_port()}", "--Wharf:Cluster:BootstrapExpect=1", "--Wharf:Replication:Factor=1",
                     f"--Wharf:Orleans:SiloPort={free_port()}", f"--Wharf:Orleans:GatewayPort={free_port()}"], "silo.log")
    s.port = silo_http
    s.wait_ready("/readyz")
    s.port = free_port()
    s.spawn("gateway", ["dotnet", DLL_GATEWAY, *m, "--urls", f"http://127.0.0.1:{s.port}"], "gateway.log")
    s.wait_ready("/readyz")
    s.wait_ready("/v2/")
    return s


def start_wharf_cluster(tmp, silos=3, gateways=2):
    """SILOS silos with R = 3 (W = 2) and GATEWAYS gateways, separate processes over Redis: what a small fleet runs."""
    s = Server("wharf", tmp)
    rport = free_port()
    s.spawn("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], "redis.log")
    time.sleep(0.3)
    m = ["--Wharf:Membership:Provider=Redis", f"--Wharf:Membership:Address=127.0.0.1:{rport}", "--Logging:LogLevel:Default=Warning"]
    http_ports = []
    for i in range(silos):
        port = free_port()
        http_ports.append(port)
        s.spawn(f"silo{i}", ["dotnet", DLL_SILO, "--Wharf:Role=Silo", *m, "--urls", f"http://127.0.0.1:{port}",
                             f"--Wharf:DataPath={tmp}/silo{i}", f"--Wharf:Bytes:Port={free_port()}", f"--Wharf:Cluster:BootstrapExpect={silos}",
                             f"--Wharf:Replication:Factor={min(3, silos)}", f"--Wharf:Orleans:SiloPort={free_port()}",
                             f"--Wharf:Orleans:GatewayPort={free_port()}"], f"silo{i}.log")
    for port in http_ports:
        s.port = port
        s.wait_ready("/readyz", timeout=180)
    for i in range(gateways):
        s.port = free_port()
        s.ports.append(s.port)
        s.spawn(f"gateway{i}", ["dotnet", DLL_GATEWAY, *m, "--urls", f"http://127.0.0.1:{s.port}"], f"gateway{i}.log")
    for port in s.ports:
        s.port = port
        s.wait_ready("/readyz", timeout=180)
        s.wait_ready("/v2/")
    s.port = s.ports[0]
    return s


def start_distribution(tmp):
    s = Server("distribution", tmp)
    s.port = free_port()
    cfg = os.path.join(tmp, "config.yml")
    with open(cfg, "w") as f:
        f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {tmp}/data
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{s.port}
""")
    s.spawn("registry", [REGISTRY, "serve", cfg], "registry.log")
    s.wait_ready()
    return s


# ------------------------------------------------------------------ OCI client
class Client:
    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def req(self, method, path, body=None, headers=None, want=None, read=True):
        try:
            self.c.request(method, path, body=body, headers=headers or {})
            r = self.c.getresponse()
        except (http.client.HTTPException, OSError):
            self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.c.request(method, path, body=body, headers=headers or {})
            r = self.c.getresponse()
        data = r.read() if read else None
        if want is not None and r.status not in want:
            raise RuntimeError(f"{method} {path}: {r.status} {(data or b'')[:300]!r}")
        return r, data

    @staticmethod
    def path_of(location, query=None):
        u = urllib.parse.urlsplit(location)
        p = u.path + ("?" + u.query if u.query else "")
        if query:
            p += ("&" if "?" in p else "?") + query
        return p

    def push_blob(self, repo, chunks, digest, chunked=False):
        """chunks: an iterable of bytes. Monolithic: POST then one PUT ?digest= with the body; chunked: PATCH each chunk
        with Content-Range, then PUT ?digest=."""
        r, _ = self.req("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"}, want=(202,))
        loc = r.getheader("Location")
        if not chunked:
            body = b"".join(chunks)
            self.req("PUT", self.path_of(loc, "digest=" + digest), body=body,
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}, want=(201,))
            return
        off = 0
        for c in chunks:
            r, _ = self.req("PATCH", self.path_of(loc), body=c, want=(202,), headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(c)), "Content-Range": f"{off}-{off + len(c) - 1}"})
            loc = r.getheader("Location") or loc
            off += len(c)
        self.req("PUT", self.path_of(loc, "digest=" + digest), headers={"Content-Length": "0"}, want=(201,))

    def put_manifest(self, repo, ref, config_digest, config_size, layers):
        m = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": n} for d, n in layers]},
                       separators=(",", ":")).encode()
        self.req("PUT", f"/v2/{repo}/manifests/{ref}", body=m, headers={"Content-Type": OCI_MANIFEST}, want=(201,))
        return "sha256:" + hashlib.sha256(m).hexdigest()

    def push_image(self, repo, tag, layers, chunked=False):
        """layers: list of (chunk list, digest, size)."""
        for chunks, d, _ in layers:
            self.push_blob(repo, chunks, d, chunked)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [d for _, d, _ in layers]}}).encode()
        cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
        self.push_blob(repo, [cfg], cd)
        return self.put_manifest(repo, tag, cd, len(cfg), [(d, n) for _, d, n in layers])

    def pull_blob(self, repo, digest, size):
        self.c.request("GET", f"/v2/{repo}/blobs/{digest}")
        r = self.c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"GET blob {digest}: {r.status}")
        h, n, buf = hashlib.sha256(), 0, bytearray(MIB)
        view = memoryview(buf)
        while True:
            k = r.readinto(buf)
            if not k:
                break
            h.update(view[:k]); n += k
        if n != size or "sha256:" + h.hexdigest() != digest:
            raise RuntimeError(f"GET blob {digest}: {n} bytes, digest mismatch or short")
        return n


def random_blob(size, marker):
    b = bytearray(os.urandom(size))
    m = marker.encode()[:32]
    b[:len(m)] = m
    b = bytes(b)
    return b, "sha256:" + hashlib.sha256(b).hexdigest()


# ------------------------------------------------------------------ measurements
def sample_peak(server, stop, peaks):
    while not stop.is_set():
        for role, p in server.measured:
            try:
                peaks[role] = max(peaks.get(role, 0), status_mib(p.pid, "VmRSS"))
            except OSError:
                pass
        stop.wait(0.05)


def with_cpu(server, fn):
    c0, t0 = server.cpu(), time.monotonic()
    extra = fn()
    return time.monotonic() - t0, server.cpu() - c0, extra


def make_data():
    """The data loaded into both registries: the same bytes, so the same digests."""
    base = os.urandom(MIB)
    blob = lambda name: (lambda b: (b, "sha256:" + hashlib.sha256(b).hexdigest()))(name.encode().ljust(64, b".") + base[64:])
    return {"layer": blob("base-layer"), "ws": [blob(f"ws-{i}") for i in range(WS_BLOBS)]}


def load_data(server, made):
    """An image for manifest GETs (its layer is the hot blob) and WS_BLOBS 1 MiB blobs, in bench/base."""
    c = Client(server.port)
    layer, ld = made["layer"]
    mdigest = c.push_image("bench/base", "latest", [([layer], ld, len(layer))])
    for b, d in made["ws"]:
        c.push_blob("bench/base", [b], d)
    return {"manifest_digest": mdigest, "hot": ld, "ws": [d for _, d in made["ws"]]}


def wrk(server, path_lines, method="GET", headers=(), duration=None, url=None):
    """Runs wrk at CONNS connections; path_lines: the request paths (one picked at random per request); url: the
    base URL when not http://127.0.0.1:<server.port> (an https port, say)."""
    script = os.path.join(server.tmp, "wrk.lua")
    with open(script, "w") as f:
        f.write("local paths = {" + ",".join(json.dumps(p) for p in path_lines) + "}\n")
        f.write("math.randomseed(os.time())\n")
        hdr = ", ".join(f'[{json.dumps(k)}] = {json.dumps(v)}' for k, v in headers)
        f.write("request = function()\n  return wrk.format(" + json.dumps(method) + ", paths[math.random(#paths)], {" + hdr + "})\nend\n")
    c0 = server.cpu()
    # One wrk per gateway, the connections split between them, side by side (a balancer's work, without its cost).
    fronts = [None] if url else server.front
    runs = [subprocess.Popen(["wrk", "-t", str(max(1, THREADS // len(fronts))), "-c", str(max(1, CONNS // len(fronts))), "-d", f"{duration or DURATION}s",
                              "--latency", "-s", script, url or f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True) for port in fronts]
    outs = [r.communicate(timeout=(duration or DURATION) + 60)[0] for r in runs]
    cpu = server.cpu() - c0
    rps = total = errors = 0
    p99 = p50 = float("nan")
    for out in outs:
        rps += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total += int(re.search(r"(\d+) requests in", out).group(1))
        m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            p99 = v if p99 != p99 else max(p99, v)  # the worse gateway's
        m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            p50 = v if p50 != p50 else max(p50, v)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        e = (int(bad.group(1)) if bad else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
        errors += e
        if e:
            log(f"{server.name}: wrk errors on {path_lines[0]}{' …' if len(path_lines) > 1 else ''}: "
                f"{bad.group(0) if bad else 'no non-2xx'}; {sock.group(0) if sock else 'no socket errors'}")
    return {"rps": rps, "p99_ms": p99, "p50_ms": p50, "errors": errors, "cpu_ms_per_req": 1000 * cpu / max(total, 1)}


def _head_proc(args):
    """One process of the HEAD generator: conns keep-alive connections in asyncio, raw HTTP/1.1 HEAD requests,
    each connection sending its next request when the previous answer's headers are in (closed loop)."""
    import asyncio, random
    port, paths, conns, duration = args

    async def one(stats, deadline):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            w.write(f"HEAD {random.choice(paths)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head = await r.readuntil(b"\r\n\r\n")
            stats["lat"].append(time.monotonic() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                stats["errors"] += 1
        w.close()

    async def main():
        stats = {"lat": [], "errors": 0}
        deadline = time.monotonic() + duration
        await asyncio.gather(*(one(stats, deadline) for _ in range(conns)))
        return stats
    return asyncio.run(main())


def head_load(server, paths, procs=2, duration=None):
    """wrk cannot measure HEAD (it waits for a body after Content-Length); this is the same closed loop at CONNS
    connections, in `procs` python processes."""
    duration = duration or DURATION
    c0, t0 = server.cpu(), time.monotonic()
    with ProcessPoolExecutor(max_workers=procs) as pool:
        parts = list(pool.map(_head_proc, [(server.port, paths, CONNS // procs, duration)] * procs))
    wall, cpu = time.monotonic() - t0, server.cpu() - c0
    lat = sorted(x for p in parts for x in p["lat"])
    n = len(lat)
    return {"rps": n / duration, "p99_ms": 1000 * lat[min(n - 1, int(0.99 * n))] if n else float("nan"),
            "p50_ms": 1000 * lat[n // 2] if n else float("nan"), "errors": sum(p["errors"] for p in parts),
            "cpu_ms_per_req": 1000 * cpu / max(n, 1)}


def small_worker(args):
    port, repo, n, size, start_at = args
    c = Client(port)
    blobs = [random_blob(size, f"{repo}-{i}-{time.time()}") for i in range(n)]
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    for i, (b, d) in enumerate(blobs):
        c.push_image(repo, f"v{i}", [([b], d, len(b))])
    return time.monotonic() - t0


def measure_small_pushes(server, pool, rnd):
    per = max(1, SMALL_IMAGES // SMALL_CONC)
    start_at = time.time() + 1.0
    jobs = [(server.port, f"bench/small-{rnd}-{w}", per, SMALL_LAYER, start_at) for w in range(SMALL_CONC)]
    futs = [pool.submit(small_worker, j) for j in jobs]
    while time.time() < start_at:
        time.sleep(0.001)
    c0, t0 = server.cpu(), time.monotonic()
    for f in futs:
        f.result()
    wall, cpu = time.monotonic() - t0, server.cpu() - c0
    n = per * SMALL_CONC
    return {"wall_s": wall, "images_per_s": n / wall, "cpu_ms_per_image": 1000 * cpu / n}


def measure_image(server, rnd):
    """Push then pull an IMAGE_MB image (IMAGE_LAYERS layers, chunked push in CHUNK_MIB PATCHes), one client."""
    c = Client(server.port)
    size = IMAGE_MB * 1000 * 1000 // IMAGE_LAYERS
    layers = []
    for i in range(IMAGE_LAYERS):
        b, d = random_blob(size, f"img-{rnd}-{i}-{time.time()}")
        step = CHUNK_MIB * MIB
        layers.append(([b[o:o + step] for o in range(0, len(b), step)], d, len(b)))
    repo = f"bench/image-{rnd}"
    total = sum(n for _, _, n in layers)
    wall, cpu, _ = with_cpu(server, lambda: c.push_image(repo, "latest", layers, chunked=True))
    push = {"wall_s": wall, "mb_s": total / wall / 1e6, "cpu_s_per_gb": cpu / (total / 1e9)}
    def pull():
        r, body = c.req("GET", f"/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST}, want=(200,))
        m = json.loads(body)
        for l in m["layers"]:
            c.pull_blob(repo, l["digest"], l["size"])
    wall, cpu, _ = with_cpu(server, pull)
    return push, {"wall_s": wall, "mb_s": total / wall / 1e6, "cpu_s_per_gb": cpu / (total / 1e9)}


def measure_big_push(server, rnd):
    """BIG_MIB MiB chunked push (CHUNK_MIB PATCHes) while sampling each process's RSS."""
    c = Client(server.port)
    base = os.urandom(CHUNK_MIB * MIB)
    markers = []
    h2 = hashlib.sha256()
    for i in range(BIG_MIB // CHUNK_MIB):
        markers.append(f"big-{rnd}-{i}".encode().ljust(64, b"."))
        h2.update(markers[-1]); h2.update(base[64:])
    digest = "sha256:" + h2.hexdigest()
    before = {role: status_mib(p.pid, "VmRSS") for role, p in server.measured}
    for _, p in server.measured:
        reset_hwm(p.pid)
    peaks, stop = dict(before), threading.Event()
    t = threading.Thread(target=sample_peak, args=(server, stop, peaks)); t.start()
    try:
        wall, cpu, _ = with_cpu(server, lambda: c.push_blob("bench/big", (m + base[64:] for m in markers), digest, chunked=True))
    finally:
        stop.set(); t.join()
    for role, p in server.measured:
        peaks[role] = max(peaks[role], status_mib(p.pid, "VmHWM"))
    total = BIG_MIB * MIB
    return {"wall_s": wall, "mb_s": total / wall / 1e6, "cpu_s_per_gb": cpu / (total / 1e9),
            "rss_growth_mib": max(peaks[r] - before[r] for r in before),
            "rss_detail": {r: [round(before[r]), round(peaks[r])] for r in before}}


# ------------------------------------------------------------------ the run
FIGURES = [  # key, label, unit, higher is better
    ("tag_rps", "manifest GET by tag", "req/s", True),
    ("tag_p99", "manifest GET by tag p99", "ms", False),
    ("digest_rps", "manifest GET by digest", "req/s", True),
    ("digest_p99", "manifest GET by digest p99", "ms", False),
    ("head_rps", f"blob HEAD ({WS_BLOBS} blobs, python loop)", "req/s", True),
    ("head_p99", "blob HEAD p99", "ms", False),
    ("hot_mbs", "1 MiB blob GET, one hot blob", "MB/s", True),
    ("hot_p99", "1 MiB blob GET, hot, p99", "ms", False),
    ("ws_mbs", f"1 MiB blob GET, {WS_BLOBS} blobs", "MB/s", True),
    ("ws_p99", f"1 MiB blob GET, {WS_BLOBS} blobs, p99", "ms", False),
    ("tag_cpu", "server CPU per manifest GET", "ms", False),
    ("small_wall", f"{SMALL_CONC}×{max(1, SMALL_IMAGES // SMALL_CONC)} small-image pushes, wall", "s", False),
    ("small_ips", "small-image pushes", "images/s", True),
    ("small_cpu", "server CPU per small image", "ms", False),
    ("img_push_wall", f"{IMAGE_MB} MB image push, wall", "s", False),
    ("img_push_cpu", f"{IMAGE_MB} MB image push, server CPU", "s/GB", False),
    ("img_pull_wall", f"{IMAGE_MB} MB image pull, wall", "s", False),
    ("img_pull_cpu", f"{IMAGE_MB} MB image pull, server CPU", "s/GB", False),
    ("big_mbs", f"{BIG_MIB} MiB blob push", "MB/s", True),
    ("big_cpu", f"{BIG_MIB} MiB blob push, server CPU", "s/GB", False),
    ("big_rss", f"{BIG_MIB} MiB push, peak RSS growth", "MiB", False),
    ("errors", "errors (non-2xx + socket)", "", False),
]


def run_mode(mode, tmproot):
    results = {"wharf": {}, "distribution": {}}
    servers = {}
    def rec(who, key, value):
        results[who].setdefault(key, []).append(value)
    try:
        wtmp = tempfile.mkdtemp(prefix="wharf-", dir=tmproot)
        dtmp = tempfile.mkdtemp(prefix="distribution-", dir=tmproot)
        log(f"[{mode}] starting Wharf and Distribution")
        servers["wharf"] = {"split": start_wharf_split, "cluster": start_wharf_cluster}.get(mode, start_wharf_allinone)(wtmp)
        servers["distribution"] = start_distribution(dtmp)
        data, made = {}, make_data()
        for who, s in servers.items():
            log(f"[{mode}] loading data into {who}")
            data[who] = load_data(s, made)
        del made
        assert data["wharf"]["manifest_digest"] == data["distribution"]["manifest_digest"]
        accept = [("Accept", OCI_MANIFEST)]
        for who, s in servers.items():  # warm-up, not counted
            wrk(s, ["/v2/bench/base/manifests/latest"], headers=accept, duration=1)
        with ProcessPoolExecutor(max_workers=SMALL_CONC) as pool:
            list(pool.map(abs, range(SMALL_CONC)))  # start the workers before the clock
            for _ in range(WARM_PUSHES):
                # Steady state, as a registry that has been running: untimed rounds of each push for both servers.
                # Wharf's JIT compiles its push path over the first GB or two pushed (a fresh silo spent 1.3-2 s of user
                # CPU per GB on a push, 0.5-0.8 once warm); Distribution (Go) has nothing to warm.
                for who, s in servers.items():
                    log(f"[{mode}] warming {who}'s push path (untimed)")
                    measure_small_pushes(s, pool, "warm"); measure_image(s, "warm"); measure_big_push(s, "warm")
            for rnd in range(ROUNDS):
                order = ["wharf", "distribution"] if rnd % 2 == 0 else ["distribution", "wharf"]
                log(f"[{mode}] round {rnd + 1}/{ROUNDS}, order {order}")
                for who in order:
                    s, d = servers[who], data[who]
                    r = wrk(s, ["/v2/bench/base/manifests/latest"], headers=accept)
                    rec(who, "tag_rps", r["rps"]); rec(who, "tag_p99", r["p99_ms"]); rec(who, "tag_cpu", r["cpu_ms_per_req"]); rec(who, "errors", r["errors"])
                for who in order:
                    r = wrk(servers[who], [f"/v2/bench/base/manifests/{data[who]['manifest_digest']}"], headers=accept)
                    rec(who, "digest_rps", r["rps"]); rec(who, "digest_p99", r["p99_ms"]); rec(who, "errors", r["errors"])
                for who in order:
                    r = head_load(servers[who], [f"/v2/bench/base/blobs/{d}" for d in data[who]["ws"]])
                    rec(who, "head_rps", r["rps"]); rec(who, "head_p99", r["p99_ms"]); rec(who, "errors", r["errors"])
                for who in order:
                    r = wrk(servers[who], [f"/v2/bench/base/blobs/{data[who]['hot']}"])
                    rec(who, "hot_mbs", r["rps"] * MIB / 1e6); rec(who, "hot_p99", r["p99_ms"]); rec(who, "errors", r["errors"])
                for who in order:
                    r = wrk(servers[who], [f"/v2/bench/base/blobs/{d}" for d in data[who]["ws"]])
                    rec(who, "ws_mbs", r["rps"] * MIB / 1e6); rec(who, "ws_p99", r["p99_ms"]); rec(who, "errors", r["errors"])
                for who in order:
                    r = measure_small_pushes(servers[who], pool, f"{rnd}")
                    rec(who, "small_wall", r["wall_s"]); rec(who, "small_ips", r["images_per_s"]); rec(who, "small_cpu", r["cpu_ms_per_image"])
                for who in order:
                    push, pull = measure_image(servers[who], rnd)
                    rec(who, "img_push_wall", push["wall_s"]); rec(who, "img_push_cpu", push["cpu_s_per_gb"])
                    rec(who, "img_pull_wall", pull["wall_s"]); rec(who, "img_pull_cpu", pull["cpu_s_per_gb"])
                for who in order:
                    r = measure_big_push(servers[who], rnd)
                    rec(who, "big_mbs", r["mb_s"]); rec(who, "big_cpu", r["cpu_s_per_gb"]); rec(who, "big_rss", r["rss_growth_mib"])
                    log(f"[{mode}] {who}: {BIG_MIB} MiB push RSS before/peak per process {r['rss_detail']}")
    finally:
        for s in servers.values():
            s.stop()
    return results


def report(mode, results):
    w, d = results["wharf"], results["distribution"]
    med = lambda v: statistics.median(v) if v else float("nan")
    label = {"allinone": "Wharf all-in-one", "split": "Wharf gateway + silo (separate processes, Redis membership, R = 1)",
             "cluster": "Wharf 3 silos (R = 3, W = 2) + 2 gateways (wrk on both; pushes through the first)"}[mode]
    print(f"\n== {label} vs CNCF Distribution 2.8.2 (filesystem), {ROUNDS} round(s), medians; wrk {CONNS} connections, {DURATION} s each")
    print(f"{'figure':44} {'unit':>9} | {'Wharf':>10} | {'Distribution':>12} | {'Wharf/Dist':>10} | better")
    rows = {}
    for key, name, unit, higher in FIGURES:
        a, b = (sum(w.get(key, [])) , sum(d.get(key, []))) if key == "errors" else (med(w.get(key, [])), med(d.get(key, [])))
        ratio = a / b if b else float("nan")
        rows[key] = (a, b, ratio)
        fmt = "{:.0f}" if (a >= 100 or key == "errors") else "{:.2f}"
        print(f"{name:44} {unit:>9} | {fmt.format(a):>10} | {fmt.format(b):>12} | {ratio:>10.2f} | {'higher' if higher else 'lower'}")
    t = lambda ok: "met" if ok else "MISSED"
    print("targets (issue 13):")
    tr, tp = rows["tag_rps"][2], rows["tag_p99"][0]
    if mode == "cluster":
        # The GET and wall-time targets are set for the all-in-one and the split gateway; the push CPU target is per
        # stored copy, which is what R = 3 is compared by (each stored byte is written three times).
        c1, c2 = rows["img_push_cpu"][2] / 3, rows["big_cpu"][2] / 3
        print(f"  push CPU s/GB per stored copy <= Distribution's / 1.5 (ratio / 3 <= 0.67): {IMAGE_MB} MB image {c1:.2f}, "
              f"{BIG_MIB} MiB blob {c2:.2f} -> {t(c1 <= 1 / 1.5 and c2 <= 1 / 1.5)}")
        print(f"  (for comparison, no target at R = 3) manifest GET by tag {tr:.2f}x, p99 {tp:.2f} ms; "
              f"1 MiB GET hot {rows['hot_mbs'][2]:.2f}x, working set {rows['ws_mbs'][2]:.2f}x; small pushes wall {rows['small_wall'][2]:.2f}; "
              f"peak RSS growth {rows['big_rss'][0]:.0f} MiB")
        return
    print(f"  manifest GET by tag >= 17x Distribution's req/s with p99 <= 10 ms: {tr:.2f}x, p99 {tp:.2f} ms -> {t(tr >= 17 and tp <= 10)}")
    need = 2.5 if mode == "allinone" else 1.5
    hr, wr = rows["hot_mbs"][2], rows["ws_mbs"][2]
    print(f"  1 MiB blob GET >= {need}x Distribution: hot {hr:.2f}x, working set {wr:.2f}x -> {t(hr >= need and wr >= need)}")
    c1, c2 = rows["img_push_cpu"][2], rows["big_cpu"][2]
    print(f"  push CPU s/GB <= Distribution's / 1.5 (ratio <= 0.67): {IMAGE_MB} MB image {c1:.2f}, {BIG_MIB} MiB blob {c2:.2f} -> {t(c1 <= 1 / 1.5 and c2 <= 1 / 1.5)}")
    sw = rows["small_wall"][2]
    if mode == "allinone":
        print(f"  concurrent small-image pushes, wall <= Distribution's / 1.5 (ratio <= 0.67): {sw:.2f} -> {t(sw <= 1 / 1.5)}")
    else:  # the issue sets the wall-time target "in the all-in-one"
        print(f"  (for comparison, the wall-time target is the all-in-one's) concurrent small-image pushes, wall: {sw:.2f}")
    g = rows["big_rss"][0]
    print(f"  RSS growth during a {BIG_MIB} MiB push <= 64 MiB (each Wharf process): {g:.0f} MiB -> {t(g <= 64)} (issue's figure is for 2 GiB)")


def main():
    for tool in ("wrk", REGISTRY):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install -y wrk docker-registry")
    if not os.path.exists(DLL_SILO):
        sys.exit(f"no Wharf build at {DLL_SILO}: dotnet build Cluster.sln -c Release")
    tmproot = tempfile.mkdtemp(prefix="wharf-vs-distribution-", dir=os.environ.get("TMPROOT", "/tmp"))
    t0 = time.monotonic()
    all_results = {}
    try:
        for mode in MODES:
            all_results[mode] = run_mode(mode, tmproot)
            report(mode, all_results[mode])
    finally:
        shutil.rmtree(tmproot, ignore_errors=True)
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": SMOKE, "results": all_results}) + "\n")
    print(f"\ndone in {time.monotonic() - t0:.0f} s")
    errors = sum(sum(r[w].get("errors", [])) for r in all_results.values() for w in r)
    if errors:
        print(f"note: {errors} wrk error(s) (non-2xx or socket): see the errors row")


if __name__ == "__main__":
    main()
