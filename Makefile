# One command per job. `make test` is what CI runs (.ci/run); `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
STACK_CACHE ?= $(HOME)/.cache/otel-stack
VENV := .venv
PY := $(VENV)/bin/python
# Re-install Python packages only when a requirements file changes.
VENV_STAMP := $(VENV)/.stamp-$(shell cat backend/requirements.txt tests/requirements.txt 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: help test backend venv system-packages collector go-tools cluster-tools frontend-build up down bench local images cluster-images cluster-test

help:
	@echo "make test      install what is missing, then run the whole test suite (what CI runs)"
	@echo "make up        a kind cluster with the whole stack (needs docker and kind); make down removes it"
	@echo "make local     what runs here as local processes (no Tempo, Loki, Grafana: those run in the cluster), with a live view of what arrives"
	@echo "make backend   run the backend under gunicorn in the foreground (env: MYSQL_*, REDIS_URL, OTEL_*)"
	@echo "make faults    fault injection under load (alerts firing from the shipped rules, gateway SIGKILL, far end (Tempo+Loki) outage, 5-min soak); make soak: the soak alone"
	@echo "make bench     run the benchmarks (ONLY=<name> for one), write bench/results/latest.json and the table in bench/README.md"
	@echo "make collector build the otelcol-stack collector (cached by manifest hash)"
	@echo "make go-tools  build the pinned Go tools the tests run (telemetrygen, etcd, kube-apiserver, kubectl, prometheus, alertmanager, ...)"
	@echo "make images    build otel-stack/{backend,frontend,collector}:dev with podman (stand-in bases where no registry answers)"
	@echo "make cluster-test  the stack by kubectl apply -k on a real single-node Kubernetes started here (root)"

$(VENV_STAMP): backend/requirements.txt tests/requirements.txt
	@echo "==> creating $(VENV) and installing pinned Python packages"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r backend/requirements.txt -r tests/requirements.txt
	@rm -f $(VENV)/.stamp-* && touch $@

venv: $(VENV_STAMP)

system-packages: venv
	@echo "==> checking Debian packages (mariadb-server, redis-server, nginx, chromium)"
	@$(PY) -m devstack.system_packages

collector:
	@echo "==> collector: otelcol-stack from collector/manifest.yaml (cold build takes minutes, then cached)"
	@bash collector/build.sh

# Every pinned Go tool the tests run (tools/<module>/, one module per upstream project), built
# one at a time on these two cores and cached by go.mod+go.sum.
TOOLS := telemetrygen etcd kube-apiserver kubectl prometheus promtool alertmanager amtool
go-tools:
	@echo "==> Go tools from tools/ ($(TOOLS)); cold: about 12 minutes in all, then cached"
	@for tool in $(TOOLS); do bash tools/build.sh $$tool >/dev/null || exit 1; done

# What the single-node cluster of `make cluster-test` adds: the rest of Kubernetes, its DNS and its
# NetworkPolicy agent.
CLUSTER_TOOLS := kube-controller-manager kube-scheduler kubelet kube-proxy coredns kube-router
cluster-tools:
	@echo "==> cluster binaries from tools/ ($(CLUSTER_TOOLS)); cold: about 8 minutes, then cached"
	@for tool in $(CLUSTER_TOOLS); do bash tools/build.sh $$tool >/dev/null || exit 1; done

# The built frontend that nginx serves in the tests (npm ci, vite build; cached by the sources' hash).
frontend-build: venv
	@echo "==> frontend: npm ci and vite build (cached until frontend/ changes)"
	@$(PY) -m devstack.nginx >/dev/null

# The three images from their Dockerfiles with podman + runc; images/build.sh says what it does.
images:
	@bash images/build.sh >/dev/null

test: venv system-packages collector go-tools frontend-build images
	@echo "==> running the test suite"
	@$(PY) -m pytest --ignore=tests/faults --ignore=tests/cluster

# What the test cluster runs besides the three images: stand-ins for MariaDB, Redis, Prometheus and
# Alertmanager, the pod sandbox (pause), CoreDNS and metrics-server; images/cluster.sh says what each is.
cluster-images: images cluster-tools
	@bash images/cluster.sh >/dev/null

# The stack as `kubectl apply -k` deploys it, on a real single-node Kubernetes started here
# (devstack/cluster.py; needs root). CI runs it after `make faults`.
cluster-test: venv system-packages collector go-tools cluster-tools frontend-build images cluster-images
	@echo "==> cluster test: etcd, apiserver, controller manager, scheduler, kubelet, kube-proxy, CoreDNS, metrics-server, containerd, kube-router (NetworkPolicies); then kubectl apply -k tests/cluster/overlay"
	@$(PY) -m pytest tests/cluster --timeout=1200

# ONLY=<name>[,<name>] runs some: request_overhead, pipeline_throughput, agent_cost, freshness, browser_cost.
bench: venv system-packages collector go-tools frontend-build
	@echo "==> benchmarks $(or $(ONLY),all) (about 32 minutes for all, 27 of them request_overhead under valgrind); figures in bench/results/latest.json"
	@$(PY) -m bench.run $(if $(ONLY),--only $(ONLY))
	@$(PY) -m bench.report

local: venv system-packages collector go-tools frontend-build
	@$(PY) -m scripts.local_stack

up:
	@bash scripts/kind-up.sh

down:
	@bash scripts/kind-down.sh

backend: venv
	@cd backend && exec ../$(VENV)/bin/gunicorn -c gunicorn.conf.py 'board:create_app()'

# Fault injection under load (about 24 minutes): a Redis outage and a stopped Tempo until the shipped
# alerts fire (their `for: 5m` kept) and resolve, kills the gateway, stops the far end (Tempo, Loki)
# for a minute, then the 5-minute soak. CI runs it after `make test`.
.PHONY: faults soak
faults: venv system-packages collector go-tools frontend-build
	@echo "==> fault tests: alerts firing (about 8 minutes), gateway SIGKILL, a far-end (Tempo+Loki) outage, then the $${SOAK_SECONDS:-300}s soak, all under load"
	@$(PY) -m pytest tests/faults -s

# The soak alone (SOAK_SECONDS sets its length; a longer one finds slower leaks).
soak: venv system-packages collector go-tools frontend-build
	@echo "==> soak: memory of the backend workers, the gateway and the sampling replicas over $${SOAK_SECONDS:-300}s of load"
	@$(PY) -m pytest tests/faults/test_soak.py -s
