#!/usr/bin/env bash
# Backup and restore throughput of the operator CLI against two all-in-ones on this machine.
#   loadtest/backup/measure.sh [total MiB, default 512] [blob MiB, default 64]
# Pushes total/blob random blobs (one image each, spread over 4 repositories) into registry A, then times
# `wharf backup` from A and `wharf restore` into an empty registry B. Needs `dotnet build Cluster.sln -c Release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
total=${1:-512}; blob=${2:-64}
work=$(mktemp -d /tmp/wharf-backup-measure.XXXXXX)
S=src/Silo/bin/Release/net10.0/Wharf.Silo.dll; C=src/Cli/bin/Release/net10.0/Wharf.Cli.dll
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa=$(free_port); pb=$(free_port)
dotnet $S --urls http://127.0.0.1:$pa --Wharf:DataPath=$work/a >$work/a.log 2>&1 & A=$!
dotnet $S --urls http://127.0.0.1:$pb --Wharf:DataPath=$work/b >$work/b.log 2>&1 & B=$!
trap 'kill $A $B 2>/dev/null; wait $A $B 2>/dev/null; rm -rf "$work"' EXIT
for p in $pa $pb; do for _ in $(seq 100); do curl -fs http://127.0.0.1:$p/v2/ >/dev/null && break; sleep 0.2; done; done

push_blob() { # repo file -> digest
  local d="sha256:$(sha256sum "$2" | cut -d' ' -f1)"
  curl -fs -o /dev/null -X POST --data-binary @"$2" -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$pa/v2/$1/blobs/uploads/?digest=$d"
  echo "$d"
}
n=$((total / blob))
for i in $(seq 1 $n); do
  repo="bench/repo$((i % 4))"
  head -c $((blob * 1024 * 1024)) /dev/urandom > $work/layer
  printf '{"architecture":"amd64","os":"linux","created":"%s"}' "$i-$RANDOM" > $work/config
  l=$(push_blob $repo $work/layer); c=$(push_blob $repo $work/config)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
    "$c" "$(stat -c %s $work/config)" "$l" "$(stat -c %s $work/layer)" > $work/manifest
  curl -fs -o /dev/null -X PUT --data-binary @$work/manifest -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$pa/v2/$repo/manifests/v$i"
done
rm -f $work/layer
echo "pushed $n images of $blob MiB ($total MiB) into 4 repositories"
sync
# Baseline: the registry's own read path, every layer pulled once with curl, one after another.
start=$(date +%s.%N)
for repo in $(curl -fs "http://127.0.0.1:$pa/v2/_catalog" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["repositories"]))'); do
  for tag in $(curl -fs "http://127.0.0.1:$pa/v2/$repo/tags/list" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["tags"]))'); do
    for d in $(curl -fs -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$pa/v2/$repo/manifests/$tag" | python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["layers"]))'); do
      curl -fs -o /dev/null "http://127.0.0.1:$pa/v2/$repo/blobs/$d"
    done
  done
done
echo "curl pull of every layer: $(python3 -c "print(round($total*1.048576/($(date +%s.%N)-$start),1))") MB/s"
/usr/bin/time -f "backup wall %e s, CLI CPU %U+%S s" dotnet $C --registry http://127.0.0.1:$pa backup $work/backup
du -sh $work/backup
sync
/usr/bin/time -f "restore wall %e s, CLI CPU %U+%S s" dotnet $C --registry http://127.0.0.1:$pb restore $work/backup
