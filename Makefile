# The README's two commands are `make run` and `make test`; both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TOOLS := .tools
GROOVY_LINT := $(TOOLS)/node_modules/.bin/npm-groovy-lint
# What is installed is what is locked (`make lock` writes the locks; commit them).
LOCK := requirements/project.lock.txt
ENV_TOOL := PYTHON=$(PYTHON) requirements/env.sh
# Python caches compiled modules (.pyc) on first import; some images and CI turn that off,
# and then every process (each notebook kernel, stage, server) compiles mlflow & co again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install seldon-runtime ibm-runtime lock tools run test lint lab bench diagrams env-example clean hub agent-images

# uv (installed from PyPI once per user, see requirements/env.sh) makes .venv hold exactly the lock; pip if uv fails.
$(STAMP): $(LOCK) pyproject.toml
	@echo "installing .venv from $(LOCK) ..."
	@$(ENV_TOOL) sync $(VENV) $(LOCK) --editable
	@touch $(STAMP)

# seldon-core cannot share .venv (old Flask, numpy<2): its own environment, from its own lock.
seldon-runtime: $(STAMP)
	@$(BIN)/python -m mlops_helpers.seldon_kind.runtime

# The ibm backend trains its model with the scikit-learn IBM's runtime serves (older than the lock's).
ibm-runtime: $(STAMP)
	@$(BIN)/python -m mlops_helpers.watson_openscale.ibm_runtime

install: $(STAMP) seldon-runtime ibm-runtime

# Re-run after changing a dependency in pyproject.toml or the Seldon runtime's requirements:
# writes requirements/*.lock.txt and environment.yml's pip list.
lock:
	@$(ENV_TOOL) lock

# npm-groovy-lint (Jenkinsfile linter) runs on Node 20 + Java 17; v15 is the line that does.
$(GROOVY_LINT):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error npm-groovy-lint@15

# configurable-http-proxy: JupyterHub's proxy for the workshop room (`make hub`, room tests).
CHP := $(TOOLS)/node_modules/.bin/configurable-http-proxy
$(CHP):
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error configurable-http-proxy@5

tools: $(GROOVY_LINT) $(CHP)

# First command: every notebook, headless, local backend; executed copies land in build/.
# JOBS=2 runs two notebooks at once (each waits on its servers much of the time).
JOBS ?= 1
run: install
	$(BIN)/mlops-workshop run --jobs $(JOBS)

# Second command: lint, then every test (unit, scenario notebooks, validators), two workers
# per core (tests/conftest.py sets that and keeps each file on one worker), in a random order
# (pytest-randomly: files and the tests in each file shuffled, the longest groups still
# first; no test may lean on what another left). The header prints the seed: to run that
# order again, make test PYTEST_ARGS="-p randomly --randomly-seed=N"; file order:
# PYTEST_ARGS="-p no:randomly". PYTEST_ARGS adds options.
test: install tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(BIN)/pytest -n auto --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

lint: install tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# JupyterLab at the project root, so scenarios/, build/ and runs/ are one click away, with the
# notebooks folder in front. Jupyter refuses to run as root unless told; in a container (where
# root is usual) this says so and passes --allow-root. More options: make lab LAB_ARGS=...
# The news pop-up ("get notified about official Jupyter news?") is JupyterLab's announcements
# plugin: disabled in .venv's page_config (labextension disable), and no update check either.
lab: install
	@if [ "$$(id -u)" = 0 ]; then echo "make lab: running as root (a container?), so JupyterLab starts with --allow-root"; fi
	@$(BIN)/jupyter labextension disable --level=sys_prefix "@jupyterlab/apputils-extension:announcements" >/dev/null 2>&1
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
		--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

bench: install
	$(BIN)/python bench/run_all.py

diagrams: install
	$(BIN)/mlops-workshop diagrams

# .env.example names every cloud setting the scenarios' specs declare, with its help.
env-example: install
	$(BIN)/python -m mlops_helpers.env_example > .env.example

clean:
	rm -rf build runs .pytest_cache

# The Jenkins agent images the Jenkinsfiles name, built from this checkout and the lock files
# (needs docker; run it where the Jenkins agents pull from). The Jenkins-shaped tests read this
# recipe (`make -n`): an agent image not built here is an error there.
agent-images:
	docker build -t mlops-workshop-ci:latest -f scenarios/seldon_kind/Dockerfile .
	docker build -t mlops-workshop-dvc-cml:latest -f scenarios/dvc_cml/Dockerfile .

# The workshop room: JupyterHub for every attendee at a printed URL; Ctrl-C ends it.
# HUB_IP=0.0.0.0 serves this machine's network; HUB_PORT picks the port; the workshop code
# comes from MLOPS_WORKSHOP_CODE (else a new one is printed).
hub: install $(CHP)
	$(BIN)/mlops-workshop hub $(if $(HUB_PORT),--port $(HUB_PORT)) $(if $(HUB_IP),--ip $(HUB_IP))
