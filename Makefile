# Two commands for a newcomer: `make demo` and `make test`. Everything else is here for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup system-deps demo test test-host test-cross test-3.12 test-3.12-if-found test-3.13 \
	test-3.14 chroots lint bench bench-check clean

$(STAMP): pyproject.toml setup.py introspect/agent/_exact_accel.c introspect/agent/_tasks_accel.c \
	  introspect/agent/_watchdog_accel.c introspect/agent/_gc_accel.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "introspect needs Python 3.11+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c 'import introspect.agent._exact_accel, introspect.agent._tasks_accel, introspect.agent._watchdog_accel, introspect.agent._gc_accel' 2>/dev/null || { \
	  echo '*** the C accelerators did not build (no C compiler or Python headers?): exact' >&2; \
	  echo '*** accounting, task counting and the blocking watchdog will run their slower' >&2; \
	  echo '*** pure-Python paths. For the' >&2; \
	  echo "*** compiler's message: INTROSPECT_REQUIRE_ACCEL=1 $(BIN)/pip install -e ." >&2; \
	  if [ -n "$$CI" ]; then exit 1; fi; }
	@touch $(STAMP)

setup: $(STAMP)

# prometheus/promtool and tmux: the tests use the real things (apt-get when missing).
system-deps:
	@bash scripts/install-system-deps.sh

demo: setup
	$(BIN)/introspect demo

# The whole suite on this machine's Python, then the crossversion subset (tests/conftest.py)
# on CPython 3.13 and 3.14 in Debian chroots (built once, cached; needs root) and on 3.12 from
# pyenv (INTROSPECT_PY312 to choose another): without a 3.12, one loud line and the run goes on.
test: test-host test-cross

test-host: setup system-deps
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

test-cross: test-3.13 test-3.14 test-3.12-if-found

# Alone, a machine without 3.12 is an error.
test-3.12:
	bash scripts/pyenv-test.sh 3.12

test-3.12-if-found:
	bash scripts/pyenv-test.sh --if-found 3.12

test-3.13:
	bash scripts/cross-test.sh trixie

test-3.14:
	bash scripts/cross-test.sh sid

chroots:
	bash scripts/build-chroot.sh trixie
	bash scripts/build-chroot.sh sid

lint: setup
	$(BIN)/python -m ruff check .

bench: setup
	$(BIN)/python benchmarks/run_all.py

# The headline cost ratios (workloads A and B, agent at defaults vs plain) next to their goals.
bench-check: setup
	$(BIN)/python benchmarks/bench_check.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info introspect/agent/*.so
