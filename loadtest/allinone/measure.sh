#!/usr/bin/env bash
# Measures the Wharf all-in-one on this machine: skopeo push/pull of a ~100 MB image with 1 and 4 clients,
# server and client CPU per GB, RSS during a 2 GiB chunked push and pull, and small-blob push/pull by size.
# See README.md next to this file. Everything runs unattended; processes it starts are stopped by PID and its
# temporary folders removed on exit.
#
# Environment (defaults in brackets; SHORT=1 switches to a ~30 s smoke):
#   RUNS [1]                 full repetitions; the table shows the median (min–max) over them
#   IMG_MB [100]             image size per skopeo client, MB;  IMG_LAYERS [4]
#   CLIENTS ["1 4"]          concurrent skopeo clients per round (each its own image and repository)
#   ROUNDS [3]               skopeo rounds per client count per run (each with fresh random images)
#   BIG_MIB [2048]           the big blob, MiB;  CHUNK_MIB [64]   PATCH chunk size
#   SMALL_SIZES [4K,16K,64K,128K,256K,1M]   SMALL_N [1000] blobs per size, capped at SMALL_MAX_MB [512] MiB
#   SMALL_CONC [8]           concurrent small-blob clients
#   DISK_MIB [1024]          the disk reference: a sequential write + fsync of this much, in the temp folder
#   COMPARE_NOINLINE [0]     1: also build a temporary copy of src/ with InlineThreshold = 0 (outside the repo)
#                            and run the small-blob measurement on it
#   PHASES ["skopeo big small"]   which measurements to run
#   SERVER_ARGS [""]         extra arguments for the server (e.g. --Logging:LogLevel:Default=Warning)
#   DLL [src/Silo/bin/Release/net10.0/Wharf.Silo.dll]   the build to measure; built if missing
#   RESULTS [temp]           keep the raw JSON lines here (appended to)
#   TMPROOT [/tmp]           where the temporary folder (data, images) goes
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BENCH="python3 $HERE/bench.py"

if [[ "${SHORT:-0}" == 1 ]]; then
  : "${IMG_MB:=20}" "${ROUNDS:=1}" "${BIG_MIB:=256}" "${SMALL_N:=80}" "${SMALL_MAX_MB:=32}" "${SMALL_SIZES:=4K,128K,256K,1M}" "${DISK_MIB:=128}"
fi
RUNS=${RUNS:-1}
IMG_MB=${IMG_MB:-100}
IMG_LAYERS=${IMG_LAYERS:-4}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 4"}
BIG_MIB=${BIG_MIB:-2048}
CHUNK_MIB=${CHUNK_MIB:-64}
SMALL_SIZES=${SMALL_SIZES:-4K,16K,64K,128K,256K,1M}
SMALL_N=${SMALL_N:-1000}
SMALL_MAX_MB=${SMALL_MAX_MB:-512}
SMALL_CONC=${SMALL_CONC:-8}
DISK_MIB=${DISK_MIB:-1024}
COMPARE_NOINLINE=${COMPARE_NOINLINE:-0}
PHASES=${PHASES:-"skopeo big small"}
SERVER_ARGS=${SERVER_ARGS:-}
DLL=${DLL:-$ROOT/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}

WORK="$(mktemp -d "${TMPROOT:-/tmp}/wharf-measure.XXXXXX")"
RESULTS=${RESULTS:-$WORK/results.jsonl}
SERVER_PID=""

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  # The server's own complaints: warnings, errors and critical lines in its log.
  if [[ -n "${SERVER_LOG:-}" && -f "$SERVER_LOG" ]]; then
    local n
    n=$(grep -cE '^(warn|fail|crit):' "$SERVER_LOG" || true)
    log "server log: $n warn/fail/crit line(s), $(wc -l <"$SERVER_LOG") lines"
    if [[ "$n" -gt 0 ]]; then grep -E -A2 '^(warn|fail|crit):' "$SERVER_LOG" | head -12 >&2; fi
  fi
  SERVER_LOG=""
}

cleanup() {
  local rc=$?
  stop_server
  if [[ "$RESULTS" == "$WORK/"* && $rc -ne 0 && -s "$RESULTS" ]]; then
    cp "$RESULTS" "/tmp/wharf-measure-results-$$.jsonl" && log "partial results kept in /tmp/wharf-measure-results-$$.jsonl"
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server DLL DATADIR: sets SERVER_PID and PORT, waits until /v2/ answers.
start_server() {
  local dll=$1 data=$2
  PORT=$($BENCH free-port)
  mkdir -p "$data"
  # shellcheck disable=SC2086
  dotnet "$dll" --urls "http://127.0.0.1:$PORT" "--Wharf:DataPath=$data" $SERVER_ARGS >"$data.log" 2>&1 &
  SERVER_PID=$!
  SERVER_LOG="$data.log"
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" 2>/dev/null; then
      log "server pid $SERVER_PID on port $PORT (data $data)"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$data.log" >&2; log "server exited"; exit 1; }
    sleep 0.2
  done
  tail -20 "$data.log" >&2; log "server did not answer in 60 s"; exit 1
}

if [[ ! -f "$DLL" ]]; then
  log "building $ROOT (Release)"
  (cd "$ROOT" && dotnet build Cluster.sln -c Release -v quiet -nologo) >&2
fi

NOINLINE_DLL=""
if [[ "$COMPARE_NOINLINE" == 1 ]]; then
  log "building a temporary copy with InlineThreshold = 0 in $WORK/noinline (not committed anywhere)"
  mkdir -p "$WORK/noinline"
  (cd "$ROOT" && tar --exclude=bin --exclude=obj -cf - src Directory.Build.props Directory.Packages.props global.json $(ls nuget.config NuGet.config 2>/dev/null)) \
    | tar -xf - -C "$WORK/noinline"
  sed -i 's/public const int InlineThreshold = .*;/public const int InlineThreshold = 0;/' "$WORK/noinline/src/Silo/Storage/BlobStore.cs"
  grep -q 'public const int InlineThreshold = 0;' "$WORK/noinline/src/Silo/Storage/BlobStore.cs" || { log "could not set InlineThreshold"; exit 1; }
  (cd "$WORK/noinline" && dotnet build src/Silo/Silo.csproj -c Release -v quiet -nologo) >&2
  NOINLINE_DLL="$WORK/noinline/src/Silo/bin/Release/net10.0/Wharf.Silo.dll"
fi

log "sizes: RUNS=$RUNS ROUNDS=$ROUNDS IMG_MB=$IMG_MB×$IMG_LAYERS layers CLIENTS='$CLIENTS' BIG_MIB=$BIG_MIB CHUNK_MIB=$CHUNK_MIB" \
    "SMALL_SIZES=$SMALL_SIZES SMALL_N=$SMALL_N SMALL_MAX_MB=$SMALL_MAX_MB SMALL_CONC=$SMALL_CONC PHASES='$PHASES'"

for run in $(seq 1 "$RUNS"); do
  R="$WORK/run$run"
  mkdir -p "$R"
  common=(--out "$RESULTS" --run "$run")
  log "run $run: disk reference, ${DISK_MIB} MiB"
  $BENCH disk --dir "$R" --mib "$DISK_MIB" "${common[@]}"

  if [[ " $PHASES " == *" skopeo "* ]]; then
    start_server "$DLL" "$R/data-skopeo"
    # Warm-up (not measured): a 2 MB image pushed and pulled once.
    $BENCH make-image --dir "$R/img-warm" --mb 2 --layers 2
    $BENCH skopeo-round --out "$WORK/warmup.jsonl" --pid "$SERVER_PID" --port "$PORT" --mode push --images "$R/img-warm" --repo-prefix warm --workdir "$R" >/dev/null
    $BENCH skopeo-round --out "$WORK/warmup.jsonl" --pid "$SERVER_PID" --port "$PORT" --mode pull --images "$R/img-warm" --repo-prefix warm --workdir "$R" >/dev/null
    rm -rf "$R/img-warm"
    for round in $(seq 1 "$ROUNDS"); do
    for c in $CLIENTS; do
      imgs=()
      for i in $(seq 0 $((c - 1))); do  # fresh random layers every round: no mounts, no dedup, no skopeo cache hits
        $BENCH make-image --dir "$R/img-$c-$i" --mb "$IMG_MB" --layers "$IMG_LAYERS"
        imgs+=("$R/img-$c-$i")
      done
      list=$(IFS=,; echo "${imgs[*]}")
      sync
      log "run $run round $round: skopeo push, $c client(s)"
      $BENCH skopeo-round "${common[@]}" --pid "$SERVER_PID" --port "$PORT" --mode push --images "$list" --repo-prefix "r$run-$round-c$c" --workdir "$R"
      log "run $run round $round: skopeo pull, $c client(s)"
      $BENCH skopeo-round "${common[@]}" --pid "$SERVER_PID" --port "$PORT" --mode pull --images "$list" --repo-prefix "r$run-$round-c$c" --workdir "$R"
      rm -rf "${imgs[@]}"
    done
    done
    stop_server
    rm -rf "$R/data-skopeo"
  fi

  if [[ " $PHASES " == *" big "* ]]; then
    start_server "$DLL" "$R/data-big"
    log "run $run: one $BIG_MIB MiB blob, $CHUNK_MIB MiB chunks"
    $BENCH bigblob "${common[@]}" --pid "$SERVER_PID" --port "$PORT" --mib "$BIG_MIB" --chunk-mib "$CHUNK_MIB"
    stop_server
    rm -rf "$R/data-big"
  fi

  if [[ " $PHASES " == *" small "* ]]; then
    variants=("inline:$DLL")
    [[ -n "$NOINLINE_DLL" ]] && variants+=("noinline:$NOINLINE_DLL")
    for v in "${variants[@]}"; do
      name=${v%%:*} dll=${v#*:}
      start_server "$dll" "$R/data-small-$name"
      log "run $run: small blobs ($name)"
      $BENCH small "${common[@]}" --pid "$SERVER_PID" --port "$PORT" --variant "$name" --sizes "$SMALL_SIZES" \
        --n "$SMALL_N" --max-mb "$SMALL_MAX_MB" --conc "$SMALL_CONC"
      stop_server
      rm -rf "$R/data-small-$name"
    done
  fi
  rm -rf "$R"
done

$BENCH report --results "$RESULTS"
[[ "$RESULTS" == "$WORK/"* ]] || log "raw results: $RESULTS"
