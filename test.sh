#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine (as root), then runs every test module, one at a time.
set -uo pipefail
cd "$(dirname "$0")"

need=()
for tool in skopeo podman buildah ctr containerd redis-server docker-compose wrk docker-registry node npm; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq skopeo podman buildah containerd uidmap redis-server docker-compose wrk docker-registry >/dev/null
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt-get install -y -qq nodejs npm >/dev/null
fi

if ! dotnet build Cluster.sln -c Release 2>&1 | tail -5 | tee /dev/stderr | grep -q "0 Error(s)"; then
  echo "build failed" >&2
  exit 1
fi
exec dotnet test --solution Cluster.sln -c Release --no-build --max-parallel-test-modules 1 --timeout 40m
