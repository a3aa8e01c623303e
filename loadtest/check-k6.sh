#!/usr/bin/env bash
# Proves the k6 scripts without k6: type-checks them against @types/k6 (tsc checkJs) and runs each script's
# setup + default function for a few iterations under the Node shim (shim/) against a real Wharf.
# With WHARF_URL set it uses that registry; otherwise it starts the built all-in-one on a free port with a
# temporary data folder and stops it at the end. Exit 0 only if everything passed.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)

if [ ! -d node_modules/@types/k6 ] || [ ! -x node_modules/.bin/tsc ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "== tsc --noEmit (checkJs against @types/k6)"
node_modules/.bin/tsc --noEmit -p tsconfig.json

pid=""; data=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$data" ]; then rm -rf "$data"; fi
}
trap cleanup EXIT
if [ -z "${WHARF_URL:-}" ]; then
  dll=${DLL:-$root/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}
  [ -f "$dll" ] || dll=$root/src/Silo/bin/Debug/net10.0/Wharf.Silo.dll
  [ -f "$dll" ] || { echo "no Wharf build: run dotnet build Cluster.sln -c Release" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  data=$(mktemp -d /tmp/wharf-k6-check.XXXXXX)
  dotnet "$dll" --urls "http://127.0.0.1:$port" --Wharf:DataPath="$data/data" --Logging:LogLevel:Default=Warning >"$data/wharf.log" 2>&1 &
  pid=$!
  export WHARF_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    curl -sf "$WHARF_URL/v2/" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "Wharf exited:" >&2; cat "$data/wharf.log" >&2; exit 1; }
    sleep 0.2
  done
  curl -sf "$WHARF_URL/v2/" >/dev/null || { echo "Wharf did not answer on $WHARF_URL" >&2; cat "$data/wharf.log" >&2; exit 1; }
fi
export WHARF_REPO_PREFIX=${WHARF_REPO_PREFIX:-k6check}

echo "== k6 scripts under the shim against $WHARF_URL"
node shim/run.mjs -i 4 -e SIZES=1MB,3MB -e CHUNK=1MiB k6/push.js
node shim/run.mjs -i 3 -e LAYERS=2 -e LAYER_SIZE=2MB -e VERIFY=1 k6/pull.js
node shim/run.mjs -i 8 -e LAYERS=2 -e LAYER_SIZE=1MB -e IMAGES=2 -e VERIFY=1 k6/mixed.js
node shim/run.mjs -i 3 -e REPOS=4 -e TAGS=12 -e PAGE=5 k6/listing.js
node shim/run.mjs -i 3 -e LAYERS=2 -e LAYER_SIZE=8MB -e VERIFY=1 k6/fanout.js
echo "== all k6 scripts passed"
