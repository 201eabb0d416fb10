# One quality gate for everyone: `make lint` and `make test`; CI runs the same targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up demo test test-unit test-integration test-cluster test-shell test-frontend ui-skipped lint format migrate bench bench-cluster clean

# The flow-builder UI (frontend/flow-builder) is built when npm is present; the API runs without it.
NPM := $(shell command -v npm 2>/dev/null)
UI_DIR := frontend/flow-builder
UI_BUILD := $(UI_DIR)/dist/index.html
UI_DEPS := $(UI_DIR)/node_modules/.installed
UI_SOURCES := $(shell find $(UI_DIR)/src $(UI_DIR)/index.html $(UI_DIR)/vite.config.ts $(UI_DIR)/tsconfig.json -type f 2>/dev/null)

install: $(STAMP) $(if $(NPM),$(UI_BUILD),ui-skipped)

$(UI_DEPS): $(UI_DIR)/package-lock.json
	cd $(UI_DIR) && npm ci --no-audit --no-fund
	touch $@

$(UI_BUILD): $(UI_DEPS) $(UI_SOURCES)
	cd $(UI_DIR) && npm run build

ui-skipped:
	@echo "*** npm not found: the flow-builder UI is NOT built (install Node.js 20+ and npm, then make install)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

up: install
	@test -f $(UI_BUILD) || echo "*** UI assets missing ($(UI_BUILD)): / will say so; install Node.js 20+ and npm, then make install"
	$(BIN)/aob up --example docs/examples/hello.json --input who=world

demo: up

test: install
	$(BIN)/pytest -q -n 2 --dist loadfile
	$(if $(NPM),@$(MAKE) --no-print-directory test-frontend,@echo "*** npm not found: SKIPPING the frontend unit and browser tests")

# Vitest unit tests, then headless Chromium (/usr/bin/chromium) against a real `aob up` stack.
test-frontend: install
	cd $(UI_DIR) && npm test
	cd $(UI_DIR) && npm run test:e2e

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q -n 2 --dist loadfile tests/integration

# A representative part of the suite on a local Redis Cluster (three primaries, three replicas) started for the
# session; tests/integration/cluster runs in `make test` too. Everything: AOB_TEST_REDIS_CLUSTER=1 pytest.
CLUSTER_TESTS := tests/integration/cluster tests/integration/coordinator/test_flow.py \
	tests/integration/coordinator/test_exactly_once.py tests/integration/coordinator/test_chaos.py \
	tests/integration/orchestrator/routes/test_runs.py tests/integration/orchestrator/routes/test_approvals.py \
	tests/integration/orchestrator/routes/test_events.py tests/integration/workers/test_runtime.py \
	tests/integration/workers/control/test_nodes.py tests/integration/fanout
test-cluster: install
	AOB_TEST_REDIS_CLUSTER=1 $(BIN)/pytest -q -n 2 --dist loadfile $(CLUSTER_TESTS)

# Shell integration scripts (curl + jq) against a real `aob up` stack.
test-shell: install
	tests/shell/with_stack.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(BIN)/aob migrate

# The benchmarks of docs/benchmarks.md (API, engine, fanout, then the UI in Chromium), one after another on an
# otherwise idle machine; each appends its section there and prints one JSON object as its last line.
# The API figures need wrk (apt-get install wrk).
bench: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@command -v wrk >/dev/null || { echo "*** wrk not found: apt-get install wrk (the API benchmark's load generator)"; exit 1; }
	$(BIN)/python -m tests.bench.api_submit
	$(BIN)/python -m tests.bench.engine
	$(BIN)/python -m tests.bench.fanout
	$(if $(NPM),cd $(UI_DIR) && npm run bench:ui,@echo "*** npm not found: SKIPPING the UI benchmark (frontend/flow-builder: npm run bench:ui)")

# The engine on a local Redis Cluster with 1, 2 and 3 coordinators (appends to docs/benchmarks.md).
bench-cluster: install
	$(BIN)/python -m tests.bench.cluster

clean:
	rm -rf $(VENV) .aob .mypy_cache .ruff_cache .pytest_cache
