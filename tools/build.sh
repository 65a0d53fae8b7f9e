#!/usr/bin/env bash
# Builds one pinned tool from its own module under tools/<module>/ (each module pins one upstream
# project, so one project's pins never move another's) and prints the binary path.
# The cache key is the module's go.mod+go.sum, so bumping a pin rebuilds and nothing else does.
# Usage: tools/build.sh <tool>, one of the names in the case below
set -euo pipefail

name=${1:-}
ldflags=
# module: the directory under tools/; mod: the module whose version is pinned; pkg: the main package.
case $name in
  telemetrygen)
    module=telemetrygen
    mod=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
    pkg=$mod ;;
  kube-apiserver|kubectl|kube-controller-manager|kube-scheduler|kubelet|kube-proxy)
    module=kubernetes
    mod=k8s.io/kubernetes
    pkg=$mod/cmd/$name ;;
  etcd)
    module=etcd
    mod=go.etcd.io/etcd/server/v3
    pkg=$mod ;;
  coredns)
    module=coredns
    mod=github.com/coredns/coredns
    pkg=$mod ;;
  prometheus|promtool)
    module=prometheus
    mod=github.com/prometheus/prometheus
    pkg=$mod/cmd/$name ;;
  alertmanager|amtool)
    module=alertmanager
    mod=github.com/prometheus/alertmanager
    pkg=$mod/cmd/$name ;;
  kube-state-metrics)
    module=kube-state-metrics
    mod=k8s.io/kube-state-metrics/v2
    pkg=$mod ;;
  metrics-server)
    module=metrics-server
    mod=sigs.k8s.io/metrics-server
    pkg=$mod/cmd/metrics-server ;;
  kube-router)
    module=kube-router
    mod=github.com/cloudnativelabs/kube-router/v2
    pkg=$mod/cmd/kube-router ;;
  *)
    echo "usage: $0 telemetrygen|etcd|kube-apiserver|kubectl|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|coredns|kube-router|kube-state-metrics|metrics-server|prometheus|promtool|alertmanager|amtool" >&2
    exit 2 ;;
esac

dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$module
key=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -d' ' -f1)
cache=${STACK_CACHE:-$HOME/.cache/otel-stack}
out=$cache/$name/$key/$name

if [[ ! -x $out ]]; then
  mkdir -p "${out%/*}" "$cache/$module"
  # Helpers and tests call this concurrently: the first caller builds, the others wait for it
  # instead of compiling the same thing again on the same cores. The lock is per module, so
  # kube-apiserver and kubectl build one after the other and the second reuses the first's packages.
  exec 9>"$cache/$module/$key.lock"
  if ! flock -n 9; then
    echo "waiting for another build from tools/$module" >&2
    flock 9
  fi
fi

if [[ ! -x $out ]]; then
  cd "$dir"
  version=$(go list -m -f '{{.Version}}' "$mod")
  if [[ $mod == k8s.io/kubernetes ]]; then
    # What `kubectl version` and /version report; unstamped they say v0.0.0-master.
    [[ $version =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "unexpected $mod version $version" >&2; exit 1; }
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=${BASH_REMATCH[1]} -X $p.gitMinor=${BASH_REMATCH[2]}"
    done
  elif [[ $mod == k8s.io/kube-state-metrics/* ]]; then
    # What --version and its build_info metric report, as its release build stamps it.
    ldflags+=" -X github.com/prometheus/common/version.Version=$version"
  elif [[ $mod == sigs.k8s.io/metrics-server ]]; then
    # What --version reports, as its release Makefile stamps it.
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version"
  elif [[ $mod == github.com/prometheus/* ]]; then
    # What --version and /api/v1/status/buildinfo report; unstamped the version is empty. Prometheus
    # 3.NN.P is published as module version v0.3NN.P; Alertmanager's module version is its release.
    if [[ $mod == */prometheus ]]; then
      [[ $version =~ ^v0\.3([0-9]{2})\.([0-9]+)$ ]] || { echo "unexpected $mod version $version" >&2; exit 1; }
      release=3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}
    else
      release=${version#v}
    fi
    ldflags+=" -X github.com/prometheus/common/version.Version=$release"
  fi
  echo "building $name ($mod $version; cold: a few minutes)" >&2
  tmp=$(mktemp "$out.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  # Static; -mod=readonly so a build never rewrites the pins.
  CGO_ENABLED=0 go build -mod=readonly -trimpath -tags netgo -ldflags="-s -w$ldflags" -o "$tmp" "$pkg"
  # Rename is atomic: a concurrent build of the same key just replaces an identical file.
  mv -f "$tmp" "$out"
  trap - EXIT
  echo "built $out" >&2
fi
echo "$out"
