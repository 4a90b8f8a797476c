# The two commands: `make run` (stack + service) and `make test` (stack + the whole test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# The browser tests: Debian's chromium, driven by playwright-core from the lock file.
CHROMIUM := /usr/bin/chromium
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json

.PHONY: run test venv lint unit unit-all coverage browser stack-up stack-down stack-status clean

# The participant SDK (sdk/python, not on PyPI) is installed in the same pip run as the project,
# which depends on it: pip takes the local one. Editable, like the project itself.
$(INSTALLED): pyproject.toml sdk/python/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "Python 3.11 is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./sdk/python -e '.[dev]'
	@touch $@

venv: $(INSTALLED)

$(CHROMIUM):
	apt-get update -q
	apt-get install -y -q --no-install-recommends chromium

$(BROWSER_DEPS): tests/browser/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix tests/browser

browser: $(CHROMIUM) $(BROWSER_DEPS)

run: venv
	$(BIN)/saga stack up
	$(BIN)/saga deploy --stage local
	$(BIN)/saga serve

test: venv lint browser
	$(BIN)/saga stack up
	$(BIN)/pytest $(PYTEST_ARGS)

# The fast suite (no servers, no external checkers); `unit-all` adds tests/tools (asl-validator
# and cfn-lint, marked `tools`).
unit: venv
	$(BIN)/pytest -m 'not integration' --ignore=tests/tools $(PYTEST_ARGS)

unit-all: venv
	$(BIN)/pytest -m 'not integration' $(PYTEST_ARGS)

# Line coverage of the services and the step runtime's decisions, from their unit tests.
COVERED := chalicelib/usecases/executions.py,chalicelib/usecases/definitions.py,$\
	chalicelib/usecases/reconciler.py,chalicelib/domain/lifecycle.py,chalicelib/domain/decisions.py
coverage: venv
	$(BIN)/python -m coverage run --include='$(COVERED)' -m pytest -q tests/unit
	$(BIN)/python -m coverage report -m --fail-under=90

# ruff, and the layers of chalicelib/ (import-linter's contracts in pyproject.toml).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

stack-up: venv
	$(BIN)/saga stack up

stack-down: venv
	$(BIN)/saga stack down

stack-status: venv
	$(BIN)/saga stack status

clean: stack-down
	rm -rf .stack $(VENV)
