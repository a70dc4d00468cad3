# The two commands: `make demo` (compile a real model and generate text) and
# `make test` (lit golden tests, then pytest). Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ckc-installed

.PHONY: all test lit pytest demo venv clean upgrade-deps fuzz

all: test

# The venv is refreshed whenever the packaging files or the lock change. Every
# install goes through requirements.lock, so a fresh machine gets exactly what
# the last green run used; --no-build-isolation builds ckc with the locked
# setuptools rather than whatever the registry serves today.
LOCK   := requirements.lock
PIP    := $(BIN)/python -m pip install -q -c $(LOCK)
$(STAMP): pyproject.toml $(LOCK) examples/plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) pip setuptools wheel
	$(PIP) --no-build-isolation -e '.[test,mpi]'
	$(PIP) --no-build-isolation -e examples/plugin
	touch $@

venv: $(STAMP)

lit: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/lit -sv test/lit

pytest: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q test/py

test: $(STAMP)
	$(MAKE) --no-print-directory lit
	$(MAKE) --no-print-directory pytest

demo: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m ckc.demo

# Fuzz every loader of user files (atheris + libFuzzer; installs clang if missing):
# >= 1M inputs in ~14 minutes, niced. FUZZ_SECONDS sets the budget.
FUZZ_SECONDS ?= 840
fuzz: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/fuzz.py --seconds $(FUZZ_SECONDS)

# Move the lock to the newest releases on purpose, then prove them with the tests.
upgrade-deps:
	$(PYTHON) tools/upgrade_deps.py
	$(MAKE) --no-print-directory test

clean:
	rm -rf .cache build $(VENV)
