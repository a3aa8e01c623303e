#!/usr/bin/env bash
# Builds Wharf's two container images for real, offline, with no Docker engine and no access to Microsoft's registry:
#
#   1. makes a Debian root filesystem with debootstrap (--variant=minbase, from the configured apt mirror) plus what the
#      .NET runtime needs (libssl3, ca-certificates, libicu), and imports it as a base image; on it, a runtime base
#      (+ the ASP.NET Core runtime copied from this machine's dotnet) and an SDK base (+ this machine's whole dotnet);
#   2. starts a real Wharf all-in-one (the built src/Silo/bin/Release/net10.0/Wharf.Silo.dll) on a free loopback port
#      with its data in a temp folder, and pushes both bases into it;
#   3. runs `buildah bud -f deploy/docker/Dockerfile --target silo` and `--target gateway` with SDK_IMAGE and
#      RUNTIME_BASE pointing into that Wharf (the bases are pulled from it), restoring NuGet packages from this machine's
#      package cache (mounted read-only, with a NuGet.Config whose only source is that folder; no network in RUN);
#   4. pushes both images into Wharf, reads their config back with `skopeo inspect --config`, and checks entry point,
#      user, exposed ports, labels, health check, working directory, environment and volume, and that the gateway
#      shares every layer of the silo but the last;
#   5. runs the silo image (podman, read-only root filesystem, data on a volume) and its own HEALTHCHECK command;
#   6. prints the image sizes and the time each step took.
#
# Usage: deploy/docker/build-local.sh [--keep]     (run as root; build the solution first:
#        dotnet build Cluster.sln -c Release)
#   --keep   leave the temp folder (storage, logs, Wharf's data) for inspection instead of deleting it
# Environment: WHARF_BASE_SUITE (default bookworm), WHARF_DEBIAN_MIRROR (default: the first Debian mirror in apt's
#   sources), WHARF_SILO_DLL, WHARF_DOTNET_DIR (default /usr/share/dotnet), NUGET_PACKAGES (default ~/.nuget/packages).
# Needs: debootstrap, buildah, podman, skopeo, jq, dotnet. Exit 0 when every check passes; otherwise the last line
# says what failed ("build-local: FAIL: ..."). Everything lives under one temp folder, removed at exit; the only
# process it leaves running is none: Wharf and the smoke container are stopped by their PID / name.
set -euo pipefail

KEEP=0
case "${1:-}" in
  --keep) KEEP=1 ;;
  "") ;;
  -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
  *) echo "build-local: FAIL: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SUITE=${WHARF_BASE_SUITE:-bookworm}
SILO_DLL=${WHARF_SILO_DLL:-$REPO/src/Silo/bin/Release/net10.0/Wharf.Silo.dll}
DOTNET_DIR=${WHARF_DOTNET_DIR:-/usr/share/dotnet}
PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}
TOTAL_START=$SECONDS

fail() { echo "build-local: FAIL: $*" >&2; exit 1; }

# The first Debian mirror apt is configured with (deb822 .sources or a one-line sources.list).
configured_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  [[ -n "$uri" ]] || uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${WHARF_DEBIAN_MIRROR:-$(configured_mirror)}

[[ $EUID -eq 0 ]] || fail "run as root (debootstrap, and buildah on vfs storage with bind mounts)"
for tool in debootstrap buildah podman skopeo jq curl python3 dotnet timeout; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install $tool)"
done
[[ -f "$SILO_DLL" ]] || fail "$SILO_DLL not found: run 'dotnet build Cluster.sln -c Release' first"
[[ -x "$DOTNET_DIR/dotnet" && -d "$DOTNET_DIR/sdk" ]] || fail "no .NET SDK in $DOTNET_DIR (set WHARF_DOTNET_DIR)"
compgen -G "$DOTNET_DIR/shared/Microsoft.AspNetCore.App/10.*" >/dev/null || fail "no ASP.NET Core 10 runtime in $DOTNET_DIR"
[[ -d "$PACKAGES" ]] || fail "no NuGet package cache at $PACKAGES (restore the solution once, or set NUGET_PACKAGES)"

WORK=$(mktemp -d /tmp/wharf-build-local.XXXXXX)
export WORK
mkdir -p "$WORK"/{logs,home/.config/containers,tmp,storage,runroot,wharf-data,nuget}
WHARF_PID=""
SMOKE=""

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$SMOKE" ]]; then
    timeout 30 podman "${PODMAN_ARGS[@]}" rm -f -t 5 "$SMOKE" >/dev/null 2>&1
  fi
  if [[ -n "$WHARF_PID" ]] && kill -0 "$WHARF_PID" 2>/dev/null; then
    kill -TERM "$WHARF_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$WHARF_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$WHARF_PID" 2>/dev/null
    wait "$WHARF_PID" 2>/dev/null
  fi
  if [[ $KEEP -eq 1 ]]; then
    echo "build-local: kept $WORK"
  else
    # Never delete through a mount that outlived a container (the package cache is bind-mounted read-only into RUN).
    grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    if grep -qF " $WORK/" /proc/self/mountinfo; then
      echo "build-local: left $WORK (something is still mounted under it)" >&2
    else
      rm -rf "$WORK"
    fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Container tools with private configuration: nothing on the host (registries.conf, policy.json, auth, storage) matters.
export HOME=$WORK/home TMPDIR=$WORK/tmp
export CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf REGISTRY_AUTH_FILE=$WORK/auth.json
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf CONTAINERS_CONF=$WORK/containers.conf
printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$CONTAINERS_REGISTRIES_CONF"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
cp "$WORK/policy.json" "$HOME/.config/containers/policy.json"
echo '{"auths":{}}' >"$REGISTRY_AUTH_FILE"
printf '[storage]\ndriver = "vfs"\ngraphroot = "%s"\nrunroot = "%s"\n' "$WORK/storage" "$WORK/runroot" >"$CONTAINERS_STORAGE_CONF"
# runc, not crun: crun refuses hosts whose cgroups are in hybrid (v1 + v2) mode, as on our build machines.
printf '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' >"$CONTAINERS_CONF"
STORE=(--storage-driver vfs --root "$WORK/storage" --runroot "$WORK/runroot")
PODMAN_ARGS=("${STORE[@]}" --tmpdir "$WORK/tmp" --events-backend none --cgroup-manager cgroupfs)
bah() { buildah --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/runroot" "$@"; }
export -f bah

# step NAME SECONDS COMMAND...: runs COMMAND (a program or an exported function) under a hard timeout, its output in
# $WORK/logs/NAME.log; prints the step's time; on failure prints the log's tail and one FAIL line.
declare -a TIMES=()
step() {
  local name=$1 secs=$2 start=$SECONDS rc=0
  shift 2
  printf '  %-34s' "$name" >&2
  timeout --kill-after=10 "$secs" bash -c '"$@"' "$name" "$@" >"$WORK/logs/$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "failed" >&2
    tail -n 30 "$WORK/logs/$name.log" | sed 's/^/  | /' >&2
    [[ $rc -eq 124 || $rc -eq 137 ]] && fail "$name: timed out after ${secs} s"
    fail "$name: exit code $rc (its output is above)"
  fi
  TIMES+=("$name $((SECONDS - start))")
  echo "$((SECONDS - start)) s" >&2
}

echo "build-local: $REPO, Debian $SUITE from $MIRROR, temp folder $WORK" >&2

# ---- 1. the bases ----
# A minimal Debian with what the .NET runtime loads: OpenSSL 3 (TLS and the resumable SHA-256), CA certificates, ICU.
ROOTFS=$WORK/rootfs
step debootstrap 900 debootstrap --variant=minbase --include=libssl3,ca-certificates,libicu72 "$SUITE" "$ROOTFS" "$MIRROR"
# Trim what no container needs: package caches and lists, documentation (the copyright files stay), man pages, locales.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/*.log \
       "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/*
find "$ROOTFS"/usr/share/doc -type f ! -name copyright -delete

# import_base NAME FROM ENV...: a container from FROM (or scratch), filled by the exported function FILL (which gets the
# container's mount point), committed as NAME in docker format.
import_base() {
  local name=$1 from=$2 fill=$3 ctr mnt
  shift 3
  ctr=$(bah from --quiet "$from")
  mnt=$(bah mount "$ctr")
  "$fill" "$mnt"
  bah umount "$ctr" >/dev/null
  local cfg=()
  for e in "$@"; do cfg+=(--env "$e"); done
  bah config "${cfg[@]}" --cmd /bin/bash "$ctr"
  bah commit --quiet --format docker --rm "$ctr" "localhost/$name"
}
fill_debian() { cp -a "$WORK/rootfs/." "$1/"; }
fill_runtime() {
  mkdir -p "$1/usr/share/dotnet/shared"
  cp -a "$DOTNET_DIR/dotnet" "$DOTNET_DIR/host" "$DOTNET_DIR/LICENSE.txt" "$DOTNET_DIR/ThirdPartyNotices.txt" "$1/usr/share/dotnet/"
  cp -a "$DOTNET_DIR/shared/Microsoft.NETCore.App" "$DOTNET_DIR/shared/Microsoft.AspNetCore.App" "$1/usr/share/dotnet/shared/"
  ln -s /usr/share/dotnet/dotnet "$1/usr/bin/dotnet"
}
fill_sdk() {
  cp -a "$DOTNET_DIR" "$1/usr/share/dotnet"
  ln -s /usr/share/dotnet/dotnet "$1/usr/bin/dotnet"
}
export -f import_base fill_debian fill_runtime fill_sdk
export DOTNET_DIR
BASE_PATH=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
step import-debian 600 import_base "wharf-local/debian:$SUITE" scratch fill_debian "$BASE_PATH"
step import-aspnet 600 import_base wharf-local/aspnet:10.0 "localhost/wharf-local/debian:$SUITE" fill_runtime \
  "$BASE_PATH" DOTNET_ROOT=/usr/share/dotnet DOTNET_RUNNING_IN_CONTAINER=true
step import-sdk 600 import_base wharf-local/sdk:10.0 "localhost/wharf-local/debian:$SUITE" fill_sdk \
  "$BASE_PATH" DOTNET_ROOT=/usr/share/dotnet DOTNET_RUNNING_IN_CONTAINER=true DOTNET_NOLOGO=1 \
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# ---- 2. a real Wharf, and the bases pushed into it ----
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1)
REG=127.0.0.1:$PORT
# `timeout` bounds Wharf's life even if this script is killed with SIGKILL; its PID is the one stopped at exit.
Logging__LogLevel__Default=Warning timeout --kill-after=10 3600 dotnet "$SILO_DLL" --urls "http://$REG" \
  "--Wharf:DataPath=$WORK/wharf-data" >"$WORK/logs/wharf.log" 2>&1 &
WHARF_PID=$!
for _ in $(seq 1 300); do
  kill -0 "$WHARF_PID" 2>/dev/null || { tail -n 20 "$WORK/logs/wharf.log" >&2; fail "Wharf exited while starting"; }
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$REG/v2/" || true)" == 200 ]] && break
  sleep 0.2
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$REG/v2/" || true)" == 200 ]] || fail "Wharf did not answer /v2/ within 60 s"
echo "  wharf all-in-one on $REG (pid $WHARF_PID)" >&2

step push-aspnet 600 bah push --quiet --tls-verify=false localhost/wharf-local/aspnet:10.0 "docker://$REG/base/aspnet:10.0"
step push-sdk 600 bah push --quiet --tls-verify=false localhost/wharf-local/sdk:10.0 "docker://$REG/base/sdk:10.0"
# Gone from local storage: the builds below can only get the bases by pulling them from Wharf.
step remove-local-bases 120 bah rmi localhost/wharf-local/aspnet:10.0 localhost/wharf-local/sdk:10.0 "localhost/wharf-local/debian:$SUITE"

# ---- 3. the images, from the repository's Dockerfile as it is ----
# Offline restore: the package cache read-only at /nuget-cache, a NuGet.Config whose only source is that folder, and
# no network at all in RUN instructions.
cat >"$WORK/nuget/NuGet.Config" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local-cache" value="/nuget-cache" />
  </packageSources>
</configuration>
EOF
VERSION=0.0.0-local
REVISION=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
BUD=(bud --format docker --layers --runtime runc --network none --tls-verify=false -f "$REPO/deploy/docker/Dockerfile"
  --build-arg "SDK_IMAGE=$REG/base/sdk:10.0" --build-arg "RUNTIME_BASE=$REG/base/aspnet:10.0"
  --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
  -v "$PACKAGES:/nuget-cache:ro" -v "$WORK/nuget:/root/.nuget/NuGet:ro")
step build-silo 1200 bah "${BUD[@]}" --target silo -t localhost/wharf/silo:local "$REPO"
step build-gateway 600 bah "${BUD[@]}" --target gateway -t localhost/wharf/gateway:local "$REPO"

# ---- 4. into Wharf and back ----
step push-silo 600 bah push --quiet --tls-verify=false localhost/wharf/silo:local "docker://$REG/wharf/silo:$VERSION"
step push-gateway 600 bah push --quiet --tls-verify=false localhost/wharf/gateway:local "docker://$REG/wharf/gateway:$VERSION"
for target in silo gateway; do
  # --raw: the config blob as pushed (without it skopeo converts to an OCI config, which has no health check).
  step "config-$target" 120 skopeo inspect --tls-verify=false --config --raw "docker://$REG/wharf/$target:$VERSION"
  cp "$WORK/logs/config-$target.log" "$WORK/$target.config.json"
  step "manifest-$target" 120 skopeo inspect --tls-verify=false --raw "docker://$REG/wharf/$target:$VERSION"
  cp "$WORK/logs/manifest-$target.log" "$WORK/$target.manifest.json"
  [[ "sha256:$(sha256sum <"$WORK/$target.config.json" | cut -d' ' -f1)" == "$(jq -r .config.digest "$WORK/$target.manifest.json")" ]] \
    || fail "$target: the config Wharf served does not match the digest in its manifest"
done

MISMATCHES=()
# expect TARGET WHAT JQ-FILTER EXPECTED-JSON: the filter applied to the image's config must equal the expected value.
expect() {
  local target=$1 what=$2 filter=$3 want=$4 got
  got=$(jq -cS "$filter" "$WORK/$target.config.json" 2>/dev/null || echo '<unreadable>')
  want=$(jq -cS . <<<"$want")
  if [[ "$got" == "$want" ]]; then
    echo "  ok   $target $what" >&2
  else
    echo "  BAD  $target $what: expected $want, got $got" >&2
    MISMATCHES+=("$target $what")
  fi
}
HC='.config.Healthcheck | {Test, Interval, Timeout, StartPeriod, Retries}'
env_of() { printf '[.config.Env[] | select(test("^(%s)="))] | sort' "$1"; }
LABELS='.config.Labels | with_entries(select(.key | startswith("org.opencontainers.image.")))'
labels_for() {
  jq -n --arg title "$1" --arg version "$VERSION" --arg revision "$REVISION" '{
    "org.opencontainers.image.title": $title,
    "org.opencontainers.image.description": "Wharf, a distributed OCI container registry (silo and gateway)",
    "org.opencontainers.image.source": "https://github.com/wharf-registry/wharf",
    "org.opencontainers.image.licenses": "MIT", "org.opencontainers.image.vendor": "Wharf",
    "org.opencontainers.image.version": $version, "org.opencontainers.image.revision": $revision }'
}
S=1000000000
for target in silo gateway; do
  expect "$target" user '.config.User' '"10001:10001"'
  expect "$target" "working dir" '.config.WorkingDir' '"/app"'
  expect "$target" labels "$LABELS" "$(labels_for "Wharf $target")"
  expect "$target" architecture '{architecture, os}' '{"architecture":"amd64","os":"linux"}'
done
expect silo entrypoint '.config.Entrypoint' '["dotnet","/app/Wharf.Silo.dll"]'
expect silo "exposed ports" '.config.ExposedPorts | keys' '["11111/tcp","30000/tcp","5100/tcp","5200/tcp","5201/tcp"]'
expect silo volume '.config.Volumes | keys' '["/var/lib/wharf"]'
expect silo "health check" "$HC" "{\"Test\":[\"CMD\",\"dotnet\",\"/app/Wharf.Cli.dll\",\"probe\",\"http://127.0.0.1:5100/healthz\"],
  \"Interval\":$((15 * S)),\"Timeout\":$((5 * S)),\"StartPeriod\":$((30 * S)),\"Retries\":3}"
expect silo environment "$(env_of 'ASPNETCORE_URLS|Wharf__[A-Za-z_]+|DOTNET_RUNNING_IN_CONTAINER|DOTNET_gcServer')" '[
  "ASPNETCORE_URLS=http://0.0.0.0:5100", "DOTNET_RUNNING_IN_CONTAINER=true", "DOTNET_gcServer=1",
  "Wharf__Bytes__BulkPort=5201", "Wharf__Bytes__Port=5200", "Wharf__DataPath=/var/lib/wharf", "Wharf__Orleans__GatewayPort=30000",
  "Wharf__Orleans__SiloPort=11111", "Wharf__Role=Silo"]'
expect gateway entrypoint '.config.Entrypoint' '["dotnet","/app/Wharf.Gateway.dll"]'
expect gateway "exposed ports" '.config.ExposedPorts | keys' '["5000/tcp"]'
expect gateway volume '.config.Volumes // {} | keys' '[]'
expect gateway "health check" "$HC" "{\"Test\":[\"CMD\",\"dotnet\",\"/app/Wharf.Cli.dll\",\"probe\",\"http://127.0.0.1:5000/healthz\"],
  \"Interval\":$((15 * S)),\"Timeout\":$((5 * S)),\"StartPeriod\":$((20 * S)),\"Retries\":3}"
expect gateway environment "$(env_of 'ASPNETCORE_URLS|Wharf__[A-Za-z_]+|DOTNET_RUNNING_IN_CONTAINER|DOTNET_gcServer')" '[
  "ASPNETCORE_URLS=http://0.0.0.0:5000", "DOTNET_RUNNING_IN_CONTAINER=true", "DOTNET_gcServer=1",
  "Wharf__DataPath=/var/lib/wharf"]'

# The two images share every layer of the base and the /app layer: the gateway adds nothing on the filesystem.
layers() { jq -r '.layers[].digest' "$WORK/$1.manifest.json"; }
base_layers=$(skopeo inspect --tls-verify=false --raw "docker://$REG/base/aspnet:10.0" | jq -r '.layers[].digest')
if [[ "$(layers gateway)" == "$(layers silo)" ]] && [[ "$(layers silo | head -n "$(wc -l <<<"$base_layers")")" == "$base_layers" ]]; then
  echo "  ok   silo and gateway share all $(layers silo | wc -l) layers, the first $(wc -l <<<"$base_layers") are the runtime base's" >&2
else
  echo "  BAD  layers: silo $(layers silo | cut -c8-19 | tr '\n' ' '); gateway $(layers gateway | cut -c8-19 | tr '\n' ' '); base $(cut -c8-19 <<<"$base_layers" | tr '\n' ' ')" >&2
  MISMATCHES+=("shared layers")
fi

# ---- 5. run it: the silo image as an all-in-one, read-only root filesystem, data on a volume, its own health check ----
SMOKE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SMOKE=wharf-build-local-smoke-$$
mkdir -p "$WORK/smoke-data"
# The image's health check command, on the port this run listens on (host network: the image's 5100 may be taken).
mapfile -t PROBE < <(jq -r '.config.Healthcheck.Test[1:][]' "$WORK/silo.config.json" | sed "s/:5100\//:$SMOKE_PORT\//")
# --no-healthcheck: podman schedules health checks with systemd timers, absent here; the loop below runs the command.
# --ulimit: podman's defaults for root exceed what this machine lets a process set (no CAP_SYS_RESOURCE).
step run-silo 300 podman "${PODMAN_ARGS[@]}" run -d --tls-verify=false --name "$SMOKE" --no-healthcheck \
  --ulimit nofile=16384:16384 --ulimit nproc=8192:8192 --network host --read-only --tmpfs /tmp \
  -v "$WORK/smoke-data:/var/lib/wharf:U" -e Wharf__Role=AllInOne -e "ASPNETCORE_URLS=http://127.0.0.1:$SMOKE_PORT" \
  -e Wharf__Orleans__SiloPort=0 -e Wharf__Orleans__GatewayPort=0 -e Wharf__Bytes__Port=0 "$REG/wharf/silo:$VERSION"
healthy=0
for _ in $(seq 1 60); do
  if timeout 20 podman "${PODMAN_ARGS[@]}" exec "$SMOKE" "${PROBE[@]}" >"$WORK/logs/probe.log" 2>&1; then healthy=1; break; fi
  [[ "$(timeout 20 podman "${PODMAN_ARGS[@]}" inspect -f '{{.State.Running}}' "$SMOKE" 2>/dev/null)" == true ]] || break
  sleep 1
done
uid=$(timeout 20 podman "${PODMAN_ARGS[@]}" exec "$SMOKE" id -u 2>/dev/null || true)
if [[ $healthy -eq 1 && "$uid" == 10001 ]] && [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$SMOKE_PORT/v2/")" == 200 ]]; then
  echo "  ok   the silo image runs (as uid $uid, read-only root filesystem, data on a volume): health check passes, /v2/ answers" >&2
else
  timeout 20 podman "${PODMAN_ARGS[@]}" logs "$SMOKE" 2>&1 | tail -n 20 | sed 's/^/  | /' >&2
  echo "  BAD  the silo image did not become healthy as uid 10001 (uid '$uid'; probe: $(tail -n 1 "$WORK/logs/probe.log" 2>/dev/null))" >&2
  MISMATCHES+=("smoke run")
fi
timeout 60 podman "${PODMAN_ARGS[@]}" rm -f -t 10 "$SMOKE" >/dev/null 2>&1 || true
SMOKE=""

# ---- 6. sizes ----
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
compressed() { jq '[.layers[].size] | add' "$WORK/$1.manifest.json"; }
echo "sizes (compressed = the layers as stored in the registry; on disk = buildah's uncompressed size):" >&2
for target in silo gateway; do
  printf '  wharf/%-8s compressed %s, on disk %s, %s layers\n' "$target" "$(mb "$(compressed "$target")")" \
    "$(bah images --format '{{.Size}}' "localhost/wharf/$target:local" | awk 'NR == 1')" "$(layers "$target" | wc -l)" >&2
done
base_bytes=$(skopeo inspect --tls-verify=false --raw "docker://$REG/base/aspnet:10.0" | jq '[.layers[].size] | add')
printf '  of which the runtime base %s, the /app layers %s\n' "$(mb "$base_bytes")" "$(mb $(( $(compressed silo) - base_bytes )))" >&2
printf '  sdk base (build stage only) compressed %s\n' \
  "$(mb "$(skopeo inspect --tls-verify=false --raw "docker://$REG/base/sdk:10.0" | jq '[.layers[].size] | add')")" >&2
printf 'times:' >&2; printf ' %s s,' "${TIMES[@]}" >&2; echo " total $((SECONDS - TOTAL_START)) s" >&2

if [[ ${#MISMATCHES[@]} -gt 0 ]]; then
  fail "the images do not match the Dockerfile: $(IFS=,; echo "${MISMATCHES[*]}")"
fi
echo "build-local: OK, both images built, pushed into Wharf, pulled back and checked in $((SECONDS - TOTAL_START)) s" >&2
