# Two commands matter: `make demo` runs the service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo reset-demo test lint typecheck importlint unit e2e bench install clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the standalone demo on http://127.0.0.1:8002 (SQLite file, reference siblings,
## SumUp sandbox, demo data). Another port: `CART_PORT=8010 make demo`.
demo: $(STAMP)
	$(VENV)/bin/rose-cart demo

## Forget the demo's carts and orders (the SQLite file under var/); stop the demo first.
## .venv stays.
reset-demo:
	rm -rf var

## Every check: lint, types, layer rules, then all tests (PostgreSQL/Redis/browser tests run
## when those are present, and must run under CI=true).
test: $(STAMP)
	$(VENV)/bin/ruff check src tests migrations $(wildcard bench)
	$(VENV)/bin/ruff format --check src tests migrations $(wildcard bench)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

e2e: $(STAMP)
	$(VENV)/bin/pytest -q tests/e2e

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var test-output
