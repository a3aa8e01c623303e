#!/usr/bin/env bash
# What does the access log cost the manifest-GET hot path? Starts two all-in-ones (Release build) on free ports, one
# with Wharf:AccessLog:Enabled=true and one without, each writing its console to a file, pushes the same small image
# to both, then alternates wrk runs of GET /v2/<repo>/manifests/<tag> between them (ROUNDS each, DURATION seconds,
# CONNS connections), so both see the same machine. For each run it prints req/s and the server's CPU time per
# request (utime + stime from /proc, the background log writer included), then the medians of the on/off ratios.
# On a machine shared with other work, req/s swings with the neighbours; CPU per request much less so, and for a
# CPU-bound server the throughput cost is 1 - off/on of it.
#   loadtest/allinone/accesslog.sh                 # ROUNDS=6 DURATION=8 CONNS=64 THREADS=2
# Needs wrk (apt-get install -y wrk), curl, python3. Stops only the servers it started, by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DLL=${DLL:-$ROOT/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}
ROUNDS=${ROUNDS:-6}; DURATION=${DURATION:-8}; CONNS=${CONNS:-64}; THREADS=${THREADS:-2}
TMP=$(mktemp -d /tmp/wharf-accesslog-XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

OFF=$(free_port); ON=$(free_port)
dotnet "$DLL" --urls "http://127.0.0.1:$OFF" "--Wharf:DataPath=$TMP/off" >"$TMP/off.log" 2>&1 & PIDS+=($!); OFF_PID=$!
dotnet "$DLL" --urls "http://127.0.0.1:$ON" "--Wharf:DataPath=$TMP/on" --Wharf:AccessLog:Enabled=true >"$TMP/on.log" 2>&1 & PIDS+=($!); ON_PID=$!
URL_PATH=/v2/bench/app/manifests/v1
for port in $OFF $ON; do
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  cfg='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
  cd=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
  curl -sf -X POST -H 'Content-Type: application/octet-stream' --data-binary "$cfg" "http://127.0.0.1:$port/v2/bench/app/blobs/uploads/?digest=$cd" >/dev/null
  m='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'$cd'","size":'${#cfg}'},"layers":[]}'
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" "http://127.0.0.1:$port$URL_PATH" >/dev/null
  wrk -t"$THREADS" -c"$CONNS" -d5s "http://127.0.0.1:$port$URL_PATH" >/dev/null   # warm-up (JIT tiers)
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # port pid -> "req/s cpu_us_per_request"
  local c0 c1 out
  c0=$(cpu_ticks "$2")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$1$URL_PATH")
  c1=$(cpu_ticks "$2")
  python3 - "$out" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
out, c0, c1, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
n = int(re.search(r"(\d+) requests in", out).group(1))
print(f"{rps:.0f} {(c1 - c0) / hz * 1e6 / n:.1f}")
PY
}
echo "$CONNS connections, ${DURATION}s per run, alternating"
echo "round  off_req/s  on_req/s  ratio   off_cpu_us/req  on_cpu_us/req  ratio"
rr=(); cr=()
for r in $(seq "$ROUNDS"); do
  read -r a ac <<<"$(run "$OFF" "$OFF_PID")"
  read -r b bc <<<"$(run "$ON" "$ON_PID")"
  x=$(python3 -c "print(f'{$b/$a:.3f}')"); y=$(python3 -c "print(f'{$bc/$ac:.3f}')"); rr+=("$x"); cr+=("$y")
  printf '%-6s %-10s %-9s %-7s %-15s %-14s %s\n' "$r" "$a" "$b" "$x" "$ac" "$bc" "$y"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "median req/s on/off: $(med "${rr[@]}")   median CPU per request on/off: $(med "${cr[@]}")   access-log lines written: $(grep -c '"log":"access"' "$TMP/on.log" || true)"
