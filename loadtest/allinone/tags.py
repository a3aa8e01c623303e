#!/usr/bin/env python3
"""Does a repository with many tags cost a push more than one with a few? (issue: "A repository with 50,000 tags
costs a push no more than one with 5".)

Starts the all-in-one (Release build) on a free port with a temporary data folder, gives repository `big` TAGS tags
(90 per multi-tag PUT: python refuses answers with over 100 headers, and each tag is an OCI-Tag header) and `small` 5, then alternates ROUNDS tag pushes (PUT of the same manifest under a new tag)
between them and prints the latency of each, plus the first page of the tags list. Ratio big/small near 1 is the
claim; the baseline (small) is measured in the same run.

    python3 loadtest/allinone/tags.py            # TAGS=50000 ROUNDS=400
"""
import hashlib, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DLL = os.environ.get("DLL", os.path.join(ROOT, "src/Silo/bin/Release/net10.0/Wharf.Silo.dll"))
TAGS = int(os.environ.get("TAGS", "50000"))
ROUNDS = int(os.environ.get("ROUNDS", "400"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    data = tempfile.mkdtemp(prefix="wharf-tags-")
    server = subprocess.Popen(["dotnet", DLL, "--urls", f"http://127.0.0.1:{port}", f"--Wharf:DataPath={data}",
                               "--Logging:LogLevel:Default=Warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def req(method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()

    try:
        for _ in range(200):
            try:
                if req("GET", "/v2/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
                conn.close()
        cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                               "layers": []}).encode()
        md = "sha256:" + hashlib.sha256(manifest).hexdigest()
        mt = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        for repo in ("big", "small"):
            assert req("POST", f"/v2/{repo}/blobs/uploads/?digest={cd}", cfg)[0] == 201
        t0 = time.time()
        for start in range(0, TAGS, 90):
            q = "&".join(f"tag=t{i:06d}" for i in range(start, min(TAGS, start + 90)))
            status, body = req("PUT", f"/v2/big/manifests/{md}?{q}", manifest, mt)
            assert status == 201, (status, body)
        fill = time.time() - t0
        for i in range(5):
            assert req("PUT", f"/v2/small/manifests/t{i:06d}", manifest, mt)[0] == 201
        lat = {"big": [], "small": []}
        for i in range(ROUNDS):
            for repo in ("big", "small"):
                t = time.perf_counter()
                status, _ = req("PUT", f"/v2/{repo}/manifests/new{i:05d}", manifest, mt)
                lat[repo].append((time.perf_counter() - t) * 1000)
                assert status == 201
        page = {}
        for repo in ("big", "small"):
            t = time.perf_counter()
            for _ in range(50):
                status, body = req("GET", f"/v2/{repo}/tags/list?n=100")
                assert status == 200
            page[repo] = (time.perf_counter() - t) * 1000 / 50
        p = lambda xs, q: sorted(xs)[int(q * (len(xs) - 1))]
        print(f"filled {TAGS} tags in {fill:.1f} s; {ROUNDS} tag pushes per repository, alternating")
        print("repository  tags      push p50 ms  push p99 ms  tags/list?n=100 ms")
        for repo, n in (("big", TAGS + ROUNDS), ("small", 5 + ROUNDS)):
            print(f"{repo:10}  {n:<8}  {statistics.median(lat[repo]):11.2f}  {p(lat[repo], 0.99):11.2f}  {page[repo]:18.2f}")
        print(f"ratio big/small: push p50 {statistics.median(lat['big']) / statistics.median(lat['small']):.2f}, "
              f"tags page {page['big'] / page['small']:.2f}")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
