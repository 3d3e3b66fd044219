# greenlane: `make demo` and `make test` set everything up themselves on a fresh machine.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint typecheck migrations-check bench fuzz clean lock

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# Two nodes on loopback, a day of certificates, then both left running until Ctrl-C.
# CI: make demo DEMO_ARGS=--exit (exit 0 only if everything reconciles).
demo: $(STAMP)
	$(BIN)/greenlane demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# Models and migrations must agree: upgrade a scratch database, then look for drift.
migrations-check: $(STAMP)
	@rm -rf .migrations-check && mkdir -p .migrations-check
	GREENLANE_DATABASE_URL=sqlite:///.migrations-check/check.db $(BIN)/greenlane db upgrade
	GREENLANE_DATABASE_URL=sqlite:///.migrations-check/check.db $(BIN)/greenlane db check
	@rm -rf .migrations-check

test: lint typecheck migrations-check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.run

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/fuzz -p no:cacheprovider

# Refresh the constraints file from a clean environment (maintainers only).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^greenlane' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis var greenlane.db*
