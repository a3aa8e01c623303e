#!/usr/bin/env python3
"""HTTP/2 layer uploads over TLS at a given round-trip time: Kestrel's default HTTP/2 flow-control windows (1 MiB per
connection, 768 KiB per stream) against the gateway's (8 MiB / 4 MiB, set when Wharf:Tls is on). Two all-in-ones in
development mode, each behind a TCP proxy that delays every chunk by RTT/2 in each direction (so HTTP/2's
WINDOW_UPDATE frames take a round trip, as over a WAN); curl --http2 POSTs a random blob with ?digest= (a monolithic
upload), alternating between the two for ROUNDS rounds. Knobs: ROUNDS (3), RTT_MS (10), SIZE_MIB (128), SMOKE=1.
The proxy is python asyncio: it caps what either side can reach, so compare the two columns, not absolute figures.
    loadtest/bench/tls_upload_rtt.py
"""
import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

RTT_MS = float(os.environ.get("RTT_MS", "10"))
SIZE_MIB = bench.knob("SIZE_MIB", 128, 8)


def proxy(listen, target, one_way):
    async def pump(reader, writer):
        q = asyncio.Queue()

        async def out():
            while True:
                due, data = await q.get()
                if data is None:
                    break
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()
        task = asyncio.create_task(out())
        while True:
            data = await reader.read(256 * 1024)
            q.put_nowait((time.monotonic() + one_way, data or None))
            if not data:
                break
        await task

    async def handle(cr, cw):
        sr, sw = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(cr, sw), pump(sr, cw), return_exceptions=True)

    async def main():
        async with await asyncio.start_server(handle, "127.0.0.1", listen) as server:
            await server.serve_forever()
    asyncio.run(main())


def start(tmp, name, extra):
    s = bench.Server(name, tmp)
    s.port, s.tls_port, s.proxy_port = bench.free_port(), bench.free_port(), bench.free_port()
    s.spawn("allinone", ["dotnet", bench.DLL_SILO, "--urls", f"http://127.0.0.1:{s.port};https://127.0.0.1:{s.tls_port}",
                         f"--Wharf:DataPath={tmp}/data", "--Wharf:Tls:Mode=Development", "--Logging:LogLevel:Default=Warning", *extra], "wharf.log")
    s.spawn("proxy", [sys.executable, os.path.abspath(__file__), "--proxy", str(s.proxy_port), str(s.tls_port), str(RTT_MS / 2000)], "proxy.log")
    try:
        s.wait_ready("/healthz")
    except Exception:
        s.stop()
        raise
    return s


def upload(s, blob):
    digest = "sha256:" + hashlib.sha256(open(blob, "rb").read()).hexdigest()
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", os.path.join(s.tmp, "data", "tls", "ca.crt"), "-o", "/dev/null",
                          "-w", "%{http_code} %{speed_upload} %{http_version}", "-X", "POST", "-H", "Content-Type: application/octet-stream",
                          "--data-binary", "@" + blob, f"https://127.0.0.1:{s.proxy_port}/v2/bench/rtt/blobs/uploads/?digest={digest}"],
                         capture_output=True, text=True, timeout=600)
    code, speed, version = out.stdout.split()
    if code != "201" or version != "2":
        raise RuntimeError(f"{s.name}: upload answered {code} over HTTP/{version}: {out.stderr}")
    return float(speed) / 1e6


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--proxy":
        proxy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return
    root = tempfile.mkdtemp(prefix="wharf-tlsrtt-")
    servers = []
    results = {"kestrel defaults": [], "wharf": []}
    try:
        for name, folder, extra in (
                ("kestrel defaults", "defaults", ["--Kestrel:Limits:Http2:InitialConnectionWindowSize=1048576",
                                                  "--Kestrel:Limits:Http2:InitialStreamWindowSize=786432"]),
                ("wharf", "wharf", [])):
            os.makedirs(os.path.join(root, folder))
            servers.append(start(os.path.join(root, folder), name, extra))
        blob = os.path.join(root, "blob")
        for rnd in range(bench.ROUNDS):
            for s in (servers if rnd % 2 == 0 else servers[::-1]):
                with open(blob, "wb") as f:
                    f.write(os.urandom(SIZE_MIB << 20))
                mbps = upload(s, blob)
                bench.log(f"round {rnd + 1} {s.name}: {mbps:.0f} MB/s")
                results[s.name].append(mbps)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{SIZE_MIB} MiB monolithic upload over TLS + HTTP/2, {RTT_MS:g} ms RTT (delaying proxy), {bench.ROUNDS} alternating round(s), medians")
    for name, rs in results.items():
        print(f"{name:<18}{statistics.median(rs):>8.0f} MB/s  rounds: {', '.join('%.0f' % r for r in rs)}")
    print(f"wharf / kestrel defaults: {statistics.median(results['wharf']) / statistics.median(results['kestrel defaults']):.2f}")


if __name__ == "__main__":
    main()
