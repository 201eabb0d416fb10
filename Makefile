# One quality gate for everyone: `make lint` and `make test`; CI runs the same targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up demo test test-unit test-integration test-shell lint format migrate bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

up: install
	$(BIN)/aob up --example docs/examples/hello.json --input who=world

demo: up

test: install
	$(BIN)/pytest -q -n 2 --dist loadfile

test-unit: install
	$(BIN)/pytest -q tests/unit

test-integration: install
	$(BIN)/pytest -q -n 2 --dist loadfile tests/integration

# Shell integration scripts (curl + jq) against a real `aob up` stack.
test-shell: install
	tests/shell/with_stack.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: install
	$(BIN)/aob migrate

bench: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m tests.bench.engine

clean:
	rm -rf $(VENV) .aob .mypy_cache .ruff_cache .pytest_cache
