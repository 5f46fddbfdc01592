# The two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: run test check-sync check-paths lint sync-scheduled nbtest pytest bench clean-venv help browser

help:
	@echo "make run   - set up .venv and run the daily job on the built-in simulator"
	@echo "make test  - set up .venv with dev tools, check notebooks/package are in sync, lint, run all tests"
	@echo "             (tests/test_packaging.py builds the wheel and runs it from a fresh venv outside the checkout)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "swingtrader needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

# The main job: one simulated trading day through the emulator and the real tastytrade client, at 1000x
# (about half a minute); the executed scheduled/daily_run.ipynb is the report.
# `make run BROKER=alpaca`: the same day through the Alpaca client (Alpaca paper on the emulator).
run: $(VENV)/.installed
	$(BIN)/swingtrader daily --speed 1000 $(if $(BROKER),--sim-broker $(BROKER))

check-sync: $(VENV)/.installed-dev
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python tools/check_sync.py

# No tracked file may name an absolute path of some machine (/work, /home, /root, /tmp, ...).
check-paths:
	$(PYTHON) tools/check_paths.py

# Unused imports/variables, syntax errors, undefined names (config in pyproject's [tool.ruff.lint]).
# Findings in swingtrader/ are fixed in the notebooks (nbs/), then nbdev-export.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check swingtrader tests bench tools

# After editing scheduled/*.ipynb: copy them into the package (check-sync fails until you do).
sync-scheduled:
	$(PYTHON) tools/sync_scheduled.py

nbtest: $(VENV)/.installed-dev
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/nbdev-test --n-workers 2

# The dashboard test drives a real browser: Debian's chromium and chromedriver (installed when missing and we may).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver (dashboard browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "The dashboard browser test needs chromium and chromedriver: run 'sudo apt-get install chromium chromium-driver' and retry." >&2; exit 1; fi

pytest: $(VENV)/.installed-dev browser
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -n 2 --dist loadfile

test: check-sync check-paths lint nbtest pytest

bench: $(VENV)/.installed-dev
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
