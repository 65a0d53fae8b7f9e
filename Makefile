# One command per job. `make test` is what CI runs (.ci/run); `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Re-install Python packages only when a requirements file changes.
VENV_STAMP := $(VENV)/.stamp-$(shell cat backend/requirements.txt tests/requirements.txt 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: help test backend venv system-packages

help:
	@echo "make test      install what is missing, then run the whole test suite (what CI runs)"
	@echo "make backend   run the backend under gunicorn in the foreground (env: MYSQL_*, REDIS_URL, OTEL_*)"

$(VENV_STAMP): backend/requirements.txt tests/requirements.txt
	@echo "==> creating $(VENV) and installing pinned Python packages"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r backend/requirements.txt -r tests/requirements.txt
	@rm -f $(VENV)/.stamp-* && touch $@

venv: $(VENV_STAMP)

system-packages: venv
	@echo "==> checking Debian packages (mariadb-server, redis-server, nginx, chromium)"
	@cd tests && ../$(PY) -m harness.system_packages

test: venv system-packages
	@echo "==> running the test suite"
	@$(PY) -m pytest

backend: venv
	@cd backend && exec ../$(VENV)/bin/gunicorn -c gunicorn.conf.py 'board:create_app()'
