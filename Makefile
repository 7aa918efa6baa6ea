# Two entry points (see README): `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=strict
	touch $(STAMP)

.PHONY: install serve demo test lint bench wheel-test
install: $(STAMP)

serve: $(STAMP)
	$(BIN)/opcatflow --db example.db serve --example

demo: $(STAMP)
	$(BIN)/opcatflow demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

test: $(STAMP) lint
	# strict editable installs must be refreshed when a module is added
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=strict --no-deps
	$(BIN)/pytest

wheel-test: $(STAMP)
	scripts/wheel-test

bench: $(STAMP)
	$(BIN)/python -m bench
