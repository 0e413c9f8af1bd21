# The README's two commands are `make run` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TOOLS := .tools
GROOVY_LINT := $(TOOLS)/node_modules/.bin/npm-groovy-lint

.PHONY: install tools run test lint lab bench diagrams clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

install: $(STAMP)

# npm-groovy-lint (Jenkinsfile linter) runs on Node 20 + Java 17; v15 is the line that does.
$(GROOVY_LINT):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error npm-groovy-lint@15

tools: $(GROOVY_LINT)

# First command: every notebook, headless, local backend; executed copies land in build/.
run: install
	$(BIN)/mlops-workshop run

# Second command: lint, then every test (unit, scenario notebooks, validators).
test: install tools
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(BIN)/pytest

lint: install tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlops_helpers

lab: install
	$(BIN)/jupyter lab notebooks/

bench: install
	$(BIN)/python bench/run_all.py

diagrams: install
	$(BIN)/mlops-workshop diagrams

clean:
	rm -rf build runs .pytest_cache
