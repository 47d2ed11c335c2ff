# Two entry points for a fresh clone: `make demo` and `make test`.
# Each sets up what it needs (venv in .venv with the locked stack, the package in editable
# mode) and skips that set-up when it is already done.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crossmodal-installed
PIP_FLAGS := --disable-pip-version-check --no-input
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: demo test lint setup browser clean-venv

setup: $(STAMP) browser

# Headless Chromium and its driver for the report and web app browser tests (Debian
# packages; a no-op when present). Without root or apt it says what to install instead.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q chromium chromium-driver >/dev/null || \
	    { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "browser tests need chromium and chromium-driver: install them (e.g. sudo apt-get install chromium chromium-driver)"; fi; }

# Re-run when the lock or the project metadata change; otherwise a no-op.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked stack into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -q -r requirements.lock 2>&1 | sed "/is ignored: it is neither a file nor a directory/d"
	@$(BIN)/python -m pip check >/dev/null || { $(BIN)/python -m pip check; exit 1; }
	$(BIN)/python -m pip install $(PIP_FLAGS) -q --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(BIN)/crossmodal demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
