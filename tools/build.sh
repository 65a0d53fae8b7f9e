#!/usr/bin/env bash
# Builds one pinned tool from its own module under tools/<name>/ (each tool has a module of its own,
# so one tool's pins never move another's) and prints the binary path.
# The cache key is the module's go.mod+go.sum, so bumping a pin rebuilds and nothing else does.
# Usage: tools/build.sh telemetrygen
set -euo pipefail

name=${1:-}
case $name in
  telemetrygen)
    mod=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
    pkg=$mod ;;
  *)
    echo "usage: $0 telemetrygen" >&2
    exit 2 ;;
esac

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$name
key=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -d' ' -f1)
out=${STACK_CACHE:-$HOME/.cache/otel-stack}/$name/$key/$name

if [[ ! -x $out ]]; then
  mkdir -p "${out%/*}"
  # Helpers and tests call this concurrently: the first caller builds, the others wait for it
  # instead of compiling the same thing again on the same cores.
  exec 9>"${out%/*}.lock"
  if ! flock -n 9; then
    echo "waiting for another build of $name" >&2
    flock 9
  fi
fi

if [[ ! -x $out ]]; then
  cd "$dir"
  version=$(go list -m -f '{{.Version}}' "$mod")
  echo "building $name ($mod $version; cold: a few minutes)" >&2
  tmp=$(mktemp "$out.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # Static; -mod=readonly so a build never rewrites the pins.
  CGO_ENABLED=0 go build -mod=readonly -trimpath -tags netgo -ldflags="-s -w" -o "$tmp" "$pkg"
  # Rename is atomic: a concurrent build of the same key just replaces an identical file.
  mv -f "$tmp" "$out"
  trap - EXIT
  echo "built $out" >&2
fi
echo "$out"
