#!/usr/bin/env bash
# What does the access log cost the manifest-GET hot path? Starts two all-in-ones (Release build) on free ports, one
# with Wharf:AccessLog:Enabled=true and one without, each writing its console to a file, pushes the same small image
# to both, then alternates wrk runs of GET /v2/<repo>/manifests/<tag> between them (ROUNDS each, DURATION seconds,
# CONNS connections) so both see the same machine. Prints req/s per round and the median ratio on/off.
# MODE=concurrent runs the two wrk at the same time instead (each server then gets about half the CPU, and noise from
# other work on the machine hits both alike): the ratio is then that of the CPU cost per request.
#   loadtest/allinone/accesslog.sh                 # ROUNDS=5 DURATION=10 CONNS=64 THREADS=2 MODE=alternate
# Needs wrk (apt-get install -y wrk), curl, python3. Stops only the servers it started, by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DLL=${DLL:-$ROOT/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}
ROUNDS=${ROUNDS:-5}; DURATION=${DURATION:-10}; CONNS=${CONNS:-64}; THREADS=${THREADS:-2}; MODE=${MODE:-alternate}
TMP=$(mktemp -d /tmp/wharf-accesslog-XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name, extra args...
  local name=$1; shift; local port; port=$(free_port)
  dotnet "$DLL" --urls "http://127.0.0.1:$port" "--Wharf:DataPath=$TMP/$name" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!); echo "$port"
}
OFF=$(start off); ON=$(start on --Wharf:AccessLog:Enabled=true)
for port in $OFF $ON; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  cfg='{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
  cd=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
  curl -sf -X POST -H 'Content-Type: application/octet-stream' --data-binary "$cfg" "http://127.0.0.1:$port/v2/bench/app/blobs/uploads/?digest=$cd" >/dev/null
  m='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'$cd'","size":'${#cfg}'},"layers":[]}'
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" "http://127.0.0.1:$port/v2/bench/app/manifests/v1" >/dev/null
  wrk -t"$THREADS" -c"$CONNS" -d3s "http://127.0.0.1:$port/v2/bench/app/manifests/v1" >/dev/null   # warm-up
done
rps() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$1/v2/bench/app/manifests/v1" | awk '/Requests\/sec/ {print $2}'; }
echo "mode $MODE, $CONNS connections, ${DURATION}s per run"
echo "round  off_req/s  on_req/s  on/off"
ratios=()
for r in $(seq "$ROUNDS"); do
  if [ "$MODE" = concurrent ]; then
    rps "$OFF" >"$TMP/a" & pa=$!; rps "$ON" >"$TMP/b" & pb=$!
    wait $pa $pb; a=$(cat "$TMP/a"); b=$(cat "$TMP/b")
  else
    a=$(rps "$OFF"); b=$(rps "$ON")
  fi
  ratio=$(python3 -c "print(f'{$b/$a:.3f}')"); ratios+=("$ratio")
  echo "$r      $a   $b   $ratio"
done
lines=$(grep -c 'Wharf.AccessLog' "$TMP/on.log" || true)
echo "median on/off: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')   access-log lines written: $lines"
