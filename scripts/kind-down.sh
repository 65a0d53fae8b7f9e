#!/usr/bin/env bash
# `make down`: deletes the kind cluster `make up` created (and with it every volume).
set -euo pipefail
command -v kind >/dev/null || { echo "kind is not installed: nothing to tear down" >&2; exit 0; }
kind delete cluster --name otel-stack
