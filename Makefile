# Two commands for a newcomer: `make demo` (build everything locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export NEXUS_DATA_DIR ?= $(CURDIR)/data
PYTEST_ARGS ?=

.PHONY: install install-test home demo demo-aws build test test-fast lint ui validate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 is pinned in pyproject.toml, in the same requirement set as sentence-transformers,
# so pip takes the CPU wheel instead of resolving a multi-GB CUDA build.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py
	$(PIP) install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The instance the CLI, webserver and daemon share; its dagster.yaml is the repository's.
home:
	mkdir -p $(DAGSTER_HOME) && [ -e $(DAGSTER_HOME)/dagster.yaml ] || ln -s $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/nexus sample-data
	$(BIN)/nexus build
	@echo
	@echo "Packages:"; ls -1 $(NEXUS_DATA_DIR)/vkp/*.vkp
	$(BIN)/nexus vkp verify $(NEXUS_DATA_DIR)/vkp/*.vkp
	@echo
	@echo "Try: $(BIN)/nexus search 'algoritma pencarian biner' --subject informatika --grade kelas_10"
	@echo "UI:  make ui   (then open http://127.0.0.1:3000)"

# The same demo in aws mode against a local moto server (no AWS account, nothing to start by hand).
demo-aws: install-test
	$(BIN)/python scripts/demo_aws.py

build: install
	$(BIN)/nexus build

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Pure logic and asset tests only: seconds, no servers.
test-fast: install-test
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check nexus_assets nexus_assets_tests benchmarks scripts

validate: install home
	$(BIN)/dagster definitions validate -w workspace.yaml

# Webserver and daemon on the repo's workspace.yaml, sharing the CLI's instance.
ui: install home
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf $(DAGSTER_HOME) $(NEXUS_DATA_DIR)/raw-curriculum $(NEXUS_DATA_DIR)/processed $(NEXUS_DATA_DIR)/vkp
