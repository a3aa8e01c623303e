#!/usr/bin/env bash
# Wharf and CNCF Distribution (Debian's docker-registry) side by side on this machine; see loadtest/README.md.
#   loadtest/bench/run.sh                       # all-in-one vs Distribution, 3 alternating rounds (~6 min on 2 cores)
#   MODES="allinone split" loadtest/bench/run.sh  # also gateway + silo as separate processes over Redis
#   MODES=cluster loadtest/bench/run.sh           # 3 silos (R = 3) + 2 gateways over Redis
#   SMOKE=1 loadtest/bench/run.sh               # seconds-long smoke: proves the command works, figures mean nothing
# Needs python3, wrk, docker-registry (and redis-server for split): apt-get install -y wrk docker-registry redis-server
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ ! -f "${DLL:-$root/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}" ] || { [[ "${MODES:-}" == *split* || "${MODES:-}" == *cluster* ]] && [ ! -f "$root/src/Gateway/bin/Release/net10.0/Wharf.Gateway.dll" ]; }; then
  dotnet build "$root/Cluster.sln" -c Release >&2
fi
exec python3 "$here/bench.py" "$@"
