#!/usr/bin/env bash
# `make images`: builds backend/, frontend/ and collector/ from their Dockerfiles with podman
# (buildah) and runc, tagged as the manifests name them (otel-stack/<name>:dev).
#
# Their FROM images come from a registry when one answers. Where none does (this project's CI
# machines), images/standins/ makes each base locally under the same name, from a debootstrap'd
# Debian bookworm and the machine's own Node.js and Go; images/README.md says how each stand-in
# differs from the real base. Prints the podman environment it used (CONTAINERS_CONF=...) last.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${STACK_CACHE:-$HOME/.cache/otel-stack}/podman
step() { printf '==> images: %s\n' "$*" >&2; }
timed() { local t0=$SECONDS; "$@"; step "  ($((SECONDS - t0)) s)"; }

missing=()
for tool in podman buildah runc slirp4netns debootstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah runc slirp4netns debootstrap uidmap containernetworking-plugins iptables >/dev/null
fi

# Root cannot raise rlimits past its own hard limits here: podman's defaults (1M files) would fail
# every container start, so the defaults are this machine's limits. cgroups v1: cgroupfs, not systemd.
mkdir -p "$cache"
cat >"$cache/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$(cat /proc/sys/kernel/pid_max):$(cat /proc/sys/kernel/pid_max)"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
# Short names (python:3.11...) resolve as Docker resolves them.
cat >"$cache/registries.conf" <<'EOF'
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
EOF
export CONTAINERS_CONF=$cache/containers.conf CONTAINERS_REGISTRIES_CONF=$cache/registries.conf

# --- bases ---------------------------------------------------------------------------------------
debian_rootfs() {
  podman image exists localhost/stack-standin/debian:bookworm && return
  step "stand-in bases: debootstrap Debian bookworm (minbase)"
  local dir
  dir=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$dir'" RETURN
  timed quiet_debootstrap "$dir/rootfs"
  tar -C "$dir/rootfs" -c . | podman import --quiet - localhost/stack-standin/debian:bookworm >/dev/null
}

quiet_debootstrap() {
  debootstrap --variant=minbase bookworm "$1" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; return 1; }
}

# base <name the Dockerfile uses> <name to tag a stand-in with> <stand-in Containerfile>
base() {
  local wanted=$1 tag=$2 standin=$3 hash
  # A stand-in carries the hash of the Containerfile it was built from: a changed one is rebuilt.
  hash=$(sha256sum "images/standins/$standin" | cut -c1-16)
  if pulled "$wanted"; then
    return
  fi
  if ! podman image exists "$tag"; then
    step "base $wanted: trying the registry"
    if timeout 120 podman pull --quiet "$wanted" >/dev/null 2>&1; then
      return
    fi
  fi
  [[ $(standin_hash "$tag") == "$hash" ]] && return
  debian_rootfs
  step "base $wanted: no registry answers; building the stand-in images/standins/$standin as $tag"
  # The stand-ins copy the machine's Go, Node.js and CA trust store in through read-only mounts.
  timed podman build --quiet --pull=never --network=host --layers -t "$tag" -f "images/standins/$standin" \
    --label "stack.standin.containerfile=$hash" \
    -v /usr/local/go:/host-go:ro -v "$(node_prefix)":/host-node:ro -v /etc/ssl/certs:/host-certs:ro \
    images/standins >/dev/null
}

# An image that came from a registry (a repository digest of a registry; what podman builds is
# localhost/...), not one built here.
pulled() {
  podman image inspect --format '{{join .RepoDigests "\n"}}' "$1" 2>/dev/null | grep -qv '^localhost/'
}

# The Containerfile hash a stand-in was labelled with; empty for an older stand-in (or none).
standin_hash() {
  podman image inspect --format '{{index .Labels "stack.standin.containerfile"}}' "$1" 2>/dev/null | sed 's/<no value>//'
}

node_prefix() { dirname "$(dirname "$(readlink -f "$(command -v node)")")"; }

from_lines() { sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' "$1/Dockerfile"; }

standin_for() {
  case ${1%%@*} in
    python:*) echo python.Containerfile ;;
    node:*) echo node.Containerfile ;;
    golang:*) echo golang.Containerfile ;;
    nginxinc/nginx-unprivileged:*) echo nginx-unprivileged.Containerfile ;;
    gcr.io/distroless/static-debian12:*) echo distroless-static.Containerfile ;;
    *) echo "no stand-in for base $1" >&2; return 1 ;;
  esac
}

for component in backend frontend collector; do
  for from in $(from_lines "$component"); do
    # A stand-in cannot carry the digest a pin names: it is tagged with the name before the '@'.
    base "$from" "${from%%@*}" "$(standin_for "$from")"
  done
done

# --- the three images ------------------------------------------------------------------------------
# build <component> <context dir> [extra podman build flags]
build() {
  local component=$1 context=$2
  shift 2
  step "otel-stack/$component:dev from $component/Dockerfile"
  timed podman build --quiet --pull=never --network=host --layers -t "otel-stack/$component:dev" \
    -f "$context/Dockerfile" "$@" "$context" >/dev/null
}

build backend backend
build frontend frontend

# collector/Dockerfile's final base is pinned by digest, which no local image can have. Without the
# real image, the build runs on a copy of collector/ whose Dockerfile differs only in that FROM line
# (the digest dropped, so the stand-in tagged with the same name is used); tests/test_images.py
# checks that it is the only difference.
collector_context=collector
for from in $(from_lines collector); do
  if [[ $from == *@sha256:* ]] && ! podman image exists "$from"; then
    collector_context=$cache/collector-context
    rm -rf "$collector_context" && mkdir -p "$collector_context"
    cp -a collector/. "$collector_context/"
    sed "s|^FROM $from|FROM ${from%%@*}|" collector/Dockerfile >"$collector_context/Dockerfile"
    step "collector: building from $collector_context (FROM ${from%%@*}: the pinned digest is not here)"
  fi
done
# The build stage compiles the distribution: it reuses this machine's Go module and build caches.
build collector "$collector_context" -v "$(go env GOMODCACHE)":/go/pkg/mod -v "$(go env GOCACHE)":/root/.cache/go-build

podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^localhost/otel-stack/' >&2
echo "CONTAINERS_CONF=$CONTAINERS_CONF CONTAINERS_REGISTRIES_CONF=$CONTAINERS_REGISTRIES_CONF"
