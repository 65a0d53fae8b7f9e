# One command per job. `make test` is what CI runs (.ci/run); `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
STACK_CACHE ?= $(HOME)/.cache/otel-stack
# Tools this repo installs itself (kustomize, when kubectl's is too old) live in the cache.
export PATH := $(STACK_CACHE)/bin:$(PATH)
KUSTOMIZE_VERSION := v5.5.0
VENV := .venv
PY := $(VENV)/bin/python
# Re-install Python packages only when a requirements file changes.
VENV_STAMP := $(VENV)/.stamp-$(shell cat backend/requirements.txt tests/requirements.txt 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: help test backend venv system-packages collector go-tools frontend-build up down bench local kustomize

help:
	@echo "make test      install what is missing, then run the whole test suite (what CI runs)"
	@echo "make up        a kind cluster with the whole stack (needs docker and kind); make down removes it"
	@echo "make local     what runs here as local processes (no Tempo, Loki, Grafana: those run in the cluster), with a live view of what arrives"
	@echo "make backend   run the backend under gunicorn in the foreground (env: MYSQL_*, REDIS_URL, OTEL_*)"
	@echo "make faults    fault injection under load (gateway SIGKILL, far end (Tempo+Loki) outage, 10-min soak); make soak: the soak alone"
	@echo "make bench     run the benchmarks, print a table, write bench/results/latest.json"
	@echo "make collector build the otelcol-stack collector (cached by manifest hash)"

$(VENV_STAMP): backend/requirements.txt tests/requirements.txt
	@echo "==> creating $(VENV) and installing pinned Python packages"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r backend/requirements.txt -r tests/requirements.txt
	@rm -f $(VENV)/.stamp-* && touch $@

venv: $(VENV_STAMP)

system-packages: venv
	@echo "==> checking Debian packages (mariadb-server, redis-server, nginx, chromium)"
	@cd tests && ../$(PY) -m harness.system_packages

collector:
	@echo "==> collector: otelcol-stack from collector/manifest.yaml (cold build takes minutes, then cached)"
	@bash collector/build.sh

go-tools:
	@echo "==> telemetrygen: built from its pinned Go module in tools/telemetrygen (cold build takes minutes, then cached)"
	@bash tools/build.sh telemetrygen

frontend-build:
	@echo "==> frontend: npm ci (when the lockfile changed) and vite build"
	@cd tests && ../$(PY) -m harness.nginx

# k8s/ needs kustomize v5 (components, labels, replacements): kubectl >= 1.27 embeds it.
kustomize:
	@if ! kubectl version --client 2>/dev/null | grep -q 'Kustomize Version: v5' && ! command -v kustomize >/dev/null; then \
	  echo "==> installing kustomize $(KUSTOMIZE_VERSION) into $(STACK_CACHE)/bin (kubectl here embeds none or an old one)"; \
	  GOBIN=$(STACK_CACHE)/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

test: venv system-packages kustomize collector go-tools frontend-build
	@echo "==> running the test suite"
	@$(PY) -m pytest --ignore=tests/faults

bench: venv system-packages collector go-tools frontend-build
	@echo "==> benchmarks (about 15 minutes); table on stdout, figures in bench/results/latest.json"
	@cd bench && ../$(PY) run.py

local: venv system-packages collector go-tools frontend-build
	@$(PY) scripts/local_stack.py

up:
	@bash scripts/kind-up.sh

down:
	@bash scripts/kind-down.sh

backend: venv
	@cd backend && exec ../$(VENV)/bin/gunicorn -c gunicorn.conf.py 'board:create_app()'

# Fault injection under load (about 15 minutes): kills the gateway, stops the far end (Tempo, Loki) for a
# minute, then the 10-minute soak. CI runs it after `make test`.
.PHONY: faults soak
faults: venv system-packages kustomize collector go-tools frontend-build
	@echo "==> fault tests: gateway SIGKILL, a far-end (Tempo+Loki) outage, then the $${SOAK_SECONDS:-600}s soak, all under load"
	@$(PY) -m pytest tests/faults -s

# The soak alone (SOAK_SECONDS shortens it).
soak: venv system-packages kustomize collector go-tools frontend-build
	@echo "==> soak: memory of the backend workers and the gateway over $${SOAK_SECONDS:-600}s of load"
	@$(PY) -m pytest tests/faults/test_soak.py -s
