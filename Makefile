# Every target sets itself up: a fresh clone needs only python3.11 and make.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv lock test test-js lint typecheck unit demo bench bench-full docs reliability clean

all: test

# The daemon and, as its own distribution, the emulator with the ground-truth scorer (emulator/).
$(STAMP): pyproject.toml emulator/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e ./emulator
	touch $(STAMP)

venv: $(STAMP)

# requirements.lock: the runtime dependencies the container installs, pinned with their hashes,
# resolved anew from pyproject.toml (run after changing a dependency; commit the result).
lock:
	test -x .lock-venv/bin/pip-compile || { $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools; }
	.lock-venv/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements.lock pyproject.toml

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/kubernetes-validate --strict --quiet deploy/kubernetes/*/*.yaml
	$(VENV)/bin/vulture daemon/ vulture_whitelist.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The whole suite: lint (ruff, import contracts, dead code), types, unit + emulator + end-to-end tests, the JS example.
test: lint typecheck test-js
	$(PY) -m pytest -q

# examples/javascript: the official JavaScript SDK against the emulator (needs Node >= 18.3 and npm).
test-js: $(STAMP)
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "need Node >= 18.3 and npm on PATH (examples/javascript)"; exit 1; }
	cd examples/javascript && npm ci --no-audit --no-fund && WRAPUPD_PYTHON=$(abspath $(PY)) node --test

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# Runs the daemon against the built-in simulated org (no credentials needed).
demo: $(STAMP)
	$(VENV)/bin/wrapupd demo --duration $${DURATION:-60}

bench: $(STAMP)
	$(PY) -m bench

bench-full: $(STAMP)
	$(PY) -m bench --full

# The fault matrix (tests/faults) at SCALE (default 1); rewrites the table in docs/RELIABILITY.md.
reliability: $(STAMP)
	$(PY) tests/faults/report.py --scale $(or $(SCALE),1) --write

# Regenerates the settings table of docs/CONFIGURATION.md from the settings schema.
docs: $(STAMP)
	$(PY) -m wrapupd.settings docs/CONFIGURATION.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache examples/javascript/node_modules
