# The two commands: `make demo` (compile a real model and generate text) and
# `make test` (lit golden tests, then pytest). Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ckc-installed

.PHONY: all test lit pytest demo venv clean

all: test

# The venv is refreshed whenever the packaging files change.
$(STAMP): pyproject.toml examples/plugin/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q -e examples/plugin
	touch $@

venv: $(STAMP)

lit: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/lit -sv test/lit

pytest: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q tests

test: $(STAMP)
	$(MAKE) --no-print-directory lit
	$(MAKE) --no-print-directory pytest

demo: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m ckc.demo

clean:
	rm -rf .cache build $(VENV)
