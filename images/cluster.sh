#!/usr/bin/env bash
# `make cluster-images`: what the test cluster of `make cluster-test` runs besides the three
# images of images/build.sh, with podman, then saved as archives for the cluster's containerd:
#   - stand-ins for the MariaDB, Redis, Prometheus, Alertmanager and kube-state-metrics images
#     k8s/ pins (no registry answers here), under the names k8s/ gives them
#     (images/cluster/*.Containerfile say how each differs from the real image);
#   - the test cluster's own pause (pod sandbox), CoreDNS and metrics-server images.
# Prints, last, the path of an index with one "<image reference> <archive>" line per image; an
# archive is rewritten only when its image changed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '==> cluster images: %s\n' "$*" >&2; }
# images/build.sh makes the bases and the otel-stack images, and prints the podman settings.
export $(bash images/build.sh)
cache=${STACK_CACHE:-$HOME/.cache/otel-stack}/cluster-images
mkdir -p "$cache"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

# The tag k8s/ pins for an image, e.g. pinned mariadb -> mariadb:11.8.8.
pinned() { sed -n "s|^ *image: \(\(.*/\)\?$1:[^ ]*\)$|\1|p" k8s/*/*.yaml | head -1; }

build() {  # build <reference> <Containerfile> [files to put in its context...]
  local ref=$1 file=$2
  shift 2
  rm -rf "$context"/* && cp images/cluster/"$file" "$@" "$context/"
  step "$ref from images/cluster/$file"
  podman build --quiet --pull=never --network=host --layers -t "$ref" -f "$context/$file" "$context" >/dev/null
}

build "docker.io/library/$(pinned mariadb)" mariadb.Containerfile images/cluster/mariadb-*.sh
build "docker.io/library/$(pinned redis)" redis.Containerfile images/cluster/redis-entrypoint.sh
for tool in prometheus alertmanager; do
  build "docker.io/$(pinned "prom/$tool")" "$tool.Containerfile" "$(bash tools/build.sh "$tool")"
done
build "$(pinned kube-state-metrics/kube-state-metrics)" kube-state-metrics.Containerfile \
  "$(bash tools/build.sh kube-state-metrics)"
coredns=$(bash tools/build.sh coredns)
# Its version is the pin in tools/coredns/go.mod.
build localhost/stack-cluster/coredns:dev coredns.Containerfile "$coredns"
# Its version is the pin in tools/metrics-server/go.mod.
build localhost/stack-cluster/metrics-server:dev metrics-server.Containerfile "$(bash tools/build.sh metrics-server)"
step "pause from images/cluster/pause/main.go"
# Standard library only: built as a lone file, with no module of its own.
(cd images/cluster/pause && CGO_ENABLED=0 GO111MODULE=off go build -trimpath -ldflags='-s -w' -o "$cache/pause.tmp" main.go)
mv "$cache/pause.tmp" "$cache/pause"
build localhost/stack-cluster/pause:dev pause.Containerfile "$cache/pause"

# The otel-stack images under the names the kubelet asks containerd for (docker.io/ expanded).
for component in backend frontend collector; do
  podman tag "localhost/otel-stack/$component:dev" "docker.io/otel-stack/$component:dev"
done

index=$cache/index
: >"$index.new"
for ref in docker.io/otel-stack/{backend,frontend,collector}:dev \
    "docker.io/library/$(pinned mariadb)" "docker.io/library/$(pinned redis)" \
    "docker.io/$(pinned prom/prometheus)" "docker.io/$(pinned prom/alertmanager)" \
    "$(pinned kube-state-metrics/kube-state-metrics)" \
    localhost/stack-cluster/{pause,coredns,metrics-server}:dev; do
  id=$(podman image inspect --format '{{.Id}}' "$ref")
  archive=$cache/${id:0:16}.tar
  if [[ ! -s $archive ]]; then
    step "saving $ref"
    podman save --quiet --format docker-archive -o "$archive.tmp" "$ref" && mv "$archive.tmp" "$archive"
  fi
  echo "$ref $archive" >>"$index.new"
done
mv "$index.new" "$index"
# Archives of images that have since been rebuilt.
for archive in "$cache"/*.tar; do grep -q " $archive\$" "$index" || rm -f "$archive"; done
echo "$index"
