#!/usr/bin/env bash
# Builds the collector described by manifest.yaml into the cache and prints the binary's path
# (the only stdout line); a binary already built from the same manifest bytes is reused.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.yaml"
cache="${STACK_CACHE:-$HOME/.cache/otel-stack}"

log() { echo "collector/build.sh: $*" >&2; }

# The builder must be the release the manifest pins; otlpreceiver's line names that release.
ocb_version="$(sed -n 's|.*go\.opentelemetry\.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*|\1|p' "$manifest")"
[[ -n "$ocb_version" ]] || { log "cannot read the otlpreceiver version from $manifest"; exit 1; }

digest="$(sha256sum "$manifest" | cut -d' ' -f1)"
out_dir="$cache/otelcol/$digest"
binary="$out_dir/otelcol-stack"

if [[ ! -x "$binary" ]]; then
  builder="$cache/ocb/$ocb_version/builder"
  if [[ ! -x "$builder" ]]; then
    log "installing OpenTelemetry Collector Builder $ocb_version"
    GOBIN="$(dirname "$builder")" go install "go.opentelemetry.io/collector/cmd/builder@$ocb_version" >&2
  fi

  log "building otelcol-stack (manifest sha256 ${digest:0:12}); a cold build takes several minutes"
  mkdir -p "$cache/otelcol"
  # Build in a private directory and move the binary in last, so an interrupted or concurrent
  # build never leaves a half-written binary at the cached path.
  staging="$(mktemp -d "$cache/otelcol/.build-XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  (cd "$staging" && "$builder" --config="$manifest") >&2
  mkdir -p "$out_dir"
  # go.mod records every module version the build resolved.
  cp "$staging/go.mod" "$out_dir/go.mod"
  mv -f "$staging/otelcol-stack" "$binary"
  log "built $binary"
fi

echo "$binary"
