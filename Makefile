# Developer entry points. `make` (or `make help`) lists the targets.
# Environment variables such as DATABASE_URL, CACHE_URL, DJANGO_* are passed
# through untouched; nothing here overrides them.

VENV        ?= .venv
PY           = $(VENV)/bin/python
PORT        ?= 8000
PYTEST_ARGS ?=
STAMP        = $(VENV)/.installed
# System Chromium for Playwright: $CHROMIUM, else `chromium` on PATH, else the
# Debian location (installed by `make browser`).
ifeq ($(origin CHROMIUM),undefined)
CHROMIUM    := $(or $(shell command -v chromium 2>/dev/null),/usr/bin/chromium)
endif

SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NODE_DIR    ?= var/node
# The official brainCloud JS client the wire tests drive, exactly these versions.
NODE_PACKAGES = braincloud@4.15.0 xmlhttprequest@1.8.0

.PHONY: help venv browser node pgbouncer test lint fmt run serve bench fuzz clean distclean

help: ## Show this help
	@echo "Usage: make <target> [VAR=value ...]"
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: VENV=$(VENV) PORT=$(PORT) PYTEST_ARGS='$(PYTEST_ARGS)' CHROMIUM=$(CHROMIUM)"

venv: $(STAMP) ## Create the venv (VENV=.venv) with Python >= 3.12 and install the project with [test] extras

$(STAMP): pyproject.toml scripts/find-python
	@python=$$(scripts/find-python) || exit 1; \
	  if [ ! -x "$(PY)" ] || ! "$(PY)" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    echo ">> creating $(VENV) with $$python"; \
	    rm -rf "$(VENV)"; \
	    "$$python" -m venv "$(VENV)"; \
	  fi
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	@touch $@

browser: ## Make sure Chromium is installed (apt-get install chromium as root if missing)
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $(CHROMIUM)"; exit 0; fi; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo ">> $(CHROMIUM) missing; installing chromium with apt-get"; \
	    apt-get -o DPkg::Lock::Timeout=600 update \
	      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y chromium; \
	  fi; \
	  if [ ! -x "$(CHROMIUM)" ]; then \
	    echo "ERROR: Chromium not found at $(CHROMIUM)." >&2; \
	    echo "       Install it (Debian/Ubuntu: sudo apt-get install -y chromium)" >&2; \
	    echo "       or point CHROMIUM=/path/to/chromium at an existing binary." >&2; \
	    exit 1; \
	  fi; \
	  echo "chromium: $(CHROMIUM)"

node: ## Install the official brainCloud JS client (npm braincloud@4.15.0) into NODE_DIR for the wire tests
	@for tool in node npm; do \
	  if ! command -v $$tool >/dev/null 2>&1; then \
	    echo "ERROR: $$tool not found; the brainCloud client tests need Node 20 and npm" >&2; \
	    echo "       (Debian/Ubuntu: sudo apt-get install -y nodejs npm)." >&2; \
	    exit 1; \
	  fi; \
	done; \
	  if [ -f "$(NODE_DIR)/node_modules/braincloud/package.json" ] \
	    && grep -q '"version": "4.15.0"' "$(NODE_DIR)/node_modules/braincloud/package.json" \
	    && [ -f "$(NODE_DIR)/node_modules/xmlhttprequest/package.json" ]; then \
	    echo "braincloud: $(NODE_DIR)/node_modules/braincloud"; exit 0; fi; \
	  mkdir -p "$(NODE_DIR)"; \
	  [ -f "$(NODE_DIR)/package.json" ] || echo '{"private": true}' > "$(NODE_DIR)/package.json"; \
	  echo ">> installing $(NODE_PACKAGES) into $(NODE_DIR)"; \
	  npm install --prefix "$(NODE_DIR)" --no-audit --no-fund --save-exact $(NODE_PACKAGES)

pgbouncer: ## On PostgreSQL, make sure pgbouncer is installed for its test (apt-get as root if missing)
	@case "$${DATABASE_URL:-}" in postgres*) ;; *) exit 0;; esac; \
	  if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then exit 0; fi; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo ">> pgbouncer missing; installing it with apt-get"; \
	    apt-get -o DPkg::Lock::Timeout=600 update \
	      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y pgbouncer; \
	  fi; \
	  if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then \
	    echo "ERROR: pgbouncer not found; its test needs it (sudo apt-get install -y pgbouncer)." >&2; \
	    exit 1; \
	  fi

# Production settings refuse to start without DJANGO_SECRET_KEY; checks, mypy's
# Django plugin and the tests use the test settings (a throwaway key, plain HTTP).
test lint: export DJANGO_SETTINGS_MODULE ?= portal.settings_test
# The e2e conftest reads $CHROMIUM too, so export it for pytest.
test: export CHROMIUM := $(CHROMIUM)
# The brainCloud client test finds the npm packages `make node` installed here.
test: export BRAINCLOUD_NODE_DIR := $(abspath $(NODE_DIR))
test: venv browser node pgbouncer ## Lint, format check, mypy, Django checks, migration check, then pytest (PYTEST_ARGS=...)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy redemption
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv ## ruff check, ruff format --check and mypy redemption
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy redemption

fmt: venv ## Reformat and auto-fix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# DJANGO_DEBUG defaults to 1 for the dev server; `make run DJANGO_DEBUG=0` or an
# exported DJANGO_DEBUG overrides it. The demo's webhooks live on http://127.0.0.1, which
# production refuses: the dev server allows such webhook targets (development only).
run: export DJANGO_DEBUG ?= 1
run: export FULFILLMENT_ALLOW_PRIVATE_NETWORKS ?= true
run: export FULFILLMENT_ALLOW_HTTP ?= true
run: export PY := $(PY)
run: export PORT := $(PORT)
run: venv ## Migrate, load demo data, then run the dev server (PORT=8000) and task worker
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo_data --url http://127.0.0.1:$(PORT)/
	exec scripts/run-dev

# Production settings on one box: DJANGO_DEBUG=0, DJANGO_SECURE=0 unless set, a secret key
# generated once into var/secret_key unless DJANGO_SECRET_KEY is set; no demo data.
serve: export PY := $(PY)
serve: export PORT := $(PORT)
serve: venv ## collectstatic, migrate, then gunicorn (gunicorn.conf.py, PORT=8000) and the task worker
	exec scripts/serve

bench: venv ## Run the benchmark (bench/run.py)
	$(PY) bench/run.py

fuzz: venv ## Fuzz the JSON API (Schemathesis, all checks) on a live gunicorn; FUZZ_SEED= reproduces
	$(PY) scripts/fuzz.py

clean: ## Remove var/, test-output/ and tool caches (keeps the venv)
	rm -rf var/ test-output/ test-results/ .pytest_cache/ .mypy_cache/ .ruff_cache/ .hypothesis/
	find . \( -path ./.git -o -path ./$(VENV) \) -prune -o -type d -name __pycache__ -print0 \
	  | xargs -0 -r rm -rf

distclean: clean ## clean, and remove the venv too
	rm -rf $(VENV)
