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

.PHONY: demo test lint setup clean-venv

setup: $(STAMP)

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

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
