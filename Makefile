# Two commands for a newcomer: `make demo` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps demo test lint bench clean

$(STAMP): pyproject.toml setup.py introspect/agent/_exact_accel.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "introspect needs Python 3.11+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# prometheus/promtool and tmux: the tests use the real things (apt-get when missing).
system-deps:
	@bash scripts/install-system-deps.sh

demo: setup
	$(BIN)/introspect demo

test: setup system-deps
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/python -m ruff check .

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info introspect/agent/*.so
