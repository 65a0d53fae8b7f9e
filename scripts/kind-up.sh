#!/usr/bin/env bash
# `make up`: a local kind cluster running the whole stack, built from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=otel-stack
step() { echo "==> $*"; }

missing=()
command -v docker >/dev/null || missing+=("docker (a container engine; https://docs.docker.com/engine/install/)")
command -v kind >/dev/null || missing+=("kind (go install sigs.k8s.io/kind@v0.33.0)")
command -v kubectl >/dev/null || missing+=("kubectl >= 1.27 (for kustomize v5)")
if command -v docker >/dev/null && ! docker info >/dev/null 2>&1; then
  missing+=("a running Docker engine (the docker client is here, but 'docker info' cannot reach a daemon)")
fi
if ((${#missing[@]})); then
  echo "make up needs:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "Without a container engine, 'make local' runs the same stack as local processes." >&2
  exit 1
fi

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "creating kind cluster $CLUSTER"
  kind create cluster --config k8s/overlays/kind/kind-cluster.yaml
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

for image in backend frontend collector; do
  step "building image otel-stack/$image:dev"
  docker build --quiet -t "otel-stack/$image:dev" "$image"
  step "loading otel-stack/$image:dev into kind"
  kind load docker-image --name "$CLUSTER" "otel-stack/$image:dev"
done

step "kubectl apply -k k8s/overlays/kind"
kubectl apply -k k8s/overlays/kind

for ns in apps observability; do
  for kind in deployment statefulset daemonset; do
    for name in $(kubectl -n "$ns" get "$kind" -o name); do
      step "waiting for $ns/$name"
      kubectl -n "$ns" rollout status "$name" --timeout=10m
    done
  done
done

# The Secret's name carries kustomize's hash suffix; find it by prefix.
grafana_secret="$(kubectl -n observability get secret -o name | grep '^secret/grafana-admin' | head -n1)"
grafana_password="$(kubectl -n observability get "$grafana_secret" -o jsonpath='{.data.admin-password}' | base64 -d)"
cat <<MSG

The stack is up.
  App:      http://localhost:8080   (sign up, log in, post a message)
  Grafana:  http://localhost:3000   user admin, password: ${grafana_password}
            Explore -> Tempo -> Search, Service Name "backend" -> open a trace -> a span -> "Logs for this span"
  Tear down: make down
MSG
