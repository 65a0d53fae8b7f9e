#!/usr/bin/env bash
# Builds one pinned tool from its own module under tools/<name>/ (Loki and Tempo pin conflicting
# versions of shared deps, so each tool has a module of its own) and prints the binary path.
# The cache key is the module's go.mod+go.sum, so bumping a pin rebuilds and nothing else does.
# Usage: tools/build.sh loki|tempo|telemetrygen
set -euo pipefail

name=${1:-}
case $name in
  loki)
    mod=github.com/grafana/loki/v3
    pkg=$mod/cmd/loki
    # Same variable the upstream Makefile sets, so /loki/api/v1/status/buildinfo reports the pin.
    vflag=-X=$mod/pkg/util/build.Version ;;
  tempo)
    mod=github.com/grafana/tempo
    pkg=$mod/cmd/tempo
    vflag=-X=main.Version ;;
  telemetrygen)
    mod=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
    pkg=$mod
    vflag= ;;
  *)
    echo "usage: $0 loki|tempo|telemetrygen" >&2
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
  # Tempo's v2 tags are not valid versions of a module path without /v2, so Tempo is pinned by
  # the pseudo-version of a main commit; its image is published as grafana/tempo:main-<sha7>.
  if [[ $version =~ [.-][0-9]{14}-([0-9a-f]{12})$ ]]; then
    label=main-${BASH_REMATCH[1]:0:7}
  else
    label=${version#v}
  fi
  echo "building $name $label ($mod $version; cold: several minutes)" >&2
  tmp=$(mktemp "$out.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  ldflags="-s -w"
  if [[ -n $vflag ]]; then ldflags+=" $vflag=$label"; fi
  # Static like the upstream images; -mod=readonly so a build never rewrites the pins.
  CGO_ENABLED=0 go build -mod=readonly -trimpath -tags netgo -ldflags="$ldflags" -o "$tmp" "$pkg"
  # Rename is atomic: a concurrent build of the same key just replaces an identical file.
  mv -f "$tmp" "$out"
  trap - EXIT
  echo "built $out" >&2
fi
echo "$out"
