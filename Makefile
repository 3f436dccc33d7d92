# Two commands for a newcomer: `make demo` (build everything locally) and `make check test` (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export NEXUS_DATA_DIR ?= $(CURDIR)/data
PYTEST_ARGS ?=

.PHONY: install install-test ocr test-tools home demo demo-aws build check test test-fast lint format-check typecheck ui validate \
	screenshots lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reproducible installs (docs/install.md): requirements.lock pins every runtime package and
# requirements-test.lock the same versions plus the test tools. torch is pinned as 2.13.0+cpu, a build
# published only on PyTorch's CPU index, so no install can fall back to PyPI's CUDA build. pip takes it
# from the indexes it is configured with (this machine: a local wheel); where they lack it (a stock Linux
# box), the same install is retried with TORCH_INDEX as an extra index. The project itself goes in with
# --no-deps (the lock is the whole set) and `pip check` confirms the lock satisfies pyproject.toml.
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check
define install_lock
	$(PIP_INSTALL) -r $(1) 2>/dev/null || { \
	  echo "torch==2.13.0+cpu is not on pip's configured indexes: retrying with --extra-index-url $(TORCH_INDEX)"; \
	  $(PIP_INSTALL) --extra-index-url $(TORCH_INDEX) -r $(1); }
endef

$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(LOCK)
	$(call install_lock,$(LOCK))
	$(PIP_INSTALL) --no-deps -e .
	$(PIP) check
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(TEST_LOCK)
	$(call install_lock,$(TEST_LOCK))
	$(PIP) check
	touch $@

# Re-pin after changing dependencies in pyproject.toml: the test lock is resolved first (the superset),
# then the runtime lock within it, so both hold the same versions. pip-tools runs in its own venv.
LOCK_TOOLS := $(CURDIR)/.venv-lock
PIP_COMPILE := $(LOCK_TOOLS)/bin/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-find-links \
	--no-emit-index-url --no-emit-trusted-host
lock:
	[ -x $(LOCK_TOOLS)/bin/pip-compile ] || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/pip install --quiet --disable-pip-version-check pip-tools==7.7.0; }
	$(PIP_COMPILE) --extra test -o $(TEST_LOCK) pyproject.toml
	$(PIP_COMPILE) -c $(TEST_LOCK) --extra workers -o $(LOCK) pyproject.toml
	@grep -q '^torch==.*+cpu$$' $(LOCK) && ! grep -qE '^(nvidia-|triton)' $(TEST_LOCK) || { \
	  echo "lock: pip resolved a CUDA torch; rerun with PIP_EXTRA_INDEX_URL=$(TORCH_INDEX) make lock"; exit 1; }

install: $(VENV)/.installed ocr

# OCR of scanned pages needs Tesseract's Indonesian and English data (Debian packages). Never fatal:
# without them `make demo` still works and scanned pages are reported as pages without text.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-ind tesseract-ocr-eng
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
ocr:
	@langs="$$(tesseract --list-langs 2>/dev/null)"; \
	if echo "$$langs" | grep -qx ind && echo "$$langs" | grep -qx eng; then \
	  echo "OCR: Tesseract with ind+eng data is installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "OCR: skipped, no apt-get here: install $(OCR_PACKAGES) yourself (scanned pages are reported until then)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "OCR: skipped, not root: sudo apt-get install -y $(OCR_PACKAGES)"; \
	else \
	  echo "OCR: installing $(OCR_PACKAGES)"; \
	  $(APT_INSTALL) $(OCR_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) $(OCR_PACKAGES); } \
	  || echo "OCR: apt-get failed; scanned pages are reported without OCR"; \
	fi

# The instance the CLI, webserver and daemon share; its dagster.yaml is the repository's.
home:
	mkdir -p $(DAGSTER_HOME) && [ -e $(DAGSTER_HOME)/dagster.yaml ] || ln -s $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
# What some tests drive besides Python, from Debian's packages; never fatal: without one, its tests skip,
# naming it. tmux: the terminal tests run `nexus build` under it. docker.io (the client and dockerd, which
# the image test starts on a private socket) and debootstrap (the offline base image): the image test.
test-tools:
	@missing=""; PATH="$$PATH:/usr/sbin:/sbin"; for tool in tmux:tmux dockerd:docker.io debootstrap:debootstrap; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool#*:}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "test tools: installing$$missing"; \
	  $(APT_INSTALL) $$missing >/dev/null 2>&1 || { apt-get update -qq && $(APT_INSTALL) $$missing; } \
	    || echo "test tools: apt-get failed for$$missing; their tests will skip"; \
	else echo "test tools: missing$$missing (apt-get install$$missing); their tests will skip"; fi

install-test: $(VENV)/.installed-test ocr test-tools

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

# `make check`: lint, format, types and the fast tests; seconds to minutes, before the slow suite.
LINT_PATHS := nexus_assets nexus_assets_tests benchmarks scripts
check: lint format-check typecheck test-fast

lint: install-test
	$(BIN)/ruff check $(LINT_PATHS)

format-check: install-test
	$(BIN)/ruff format --check $(LINT_PATHS)

# mypy on nexus_assets/, configured in pyproject.toml's [tool.mypy].
typecheck: install-test
	$(BIN)/mypy

# Pure logic and asset tests only: no servers, no full builds.
test-fast: install-test
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# The whole suite. In `make check test` (CI) the fast tests have just passed in `check`, so `test` runs
# the rest (`-m slow`): together they are the whole suite, each test once.
TEST_MARKER := $(if $(filter check test-fast,$(MAKECMDGOALS)),-m slow,)
test: install-test
	$(BIN)/python -m pytest $(TEST_MARKER) $(PYTEST_ARGS)

# dagster-dg-cli (`dg`) must be the release of the installed dagster, so it is installed on demand at that
# version rather than pinned a second time; not in the locks, which are also the production image's (dg is
# a development tool, 16 packages with dagster-cloud-cli and GitPython). Nothing is done if it is there.
DAGSTER_VERSION = $$($(BIN)/python -c 'import dagster; print(dagster.__version__)')
define ensure_dg
	@$(BIN)/dg --version 2>/dev/null | grep -qx "dg, version $(DAGSTER_VERSION)" \
	  || $(PIP) install --quiet --disable-pip-version-check "dagster-dg-cli==$(DAGSTER_VERSION)"
endef

# `dg check defs` loads the code location ([tool.dg] in pyproject.toml) as the webserver would.
validate: install home
	$(call ensure_dg)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

# Webserver and daemon (`dg dev`, which supersedes `dagster dev`) on the repo's workspace.yaml, sharing the
# CLI's instance. Run from DAGSTER_HOME: Dagster warns about a dagster.yaml in any other working directory
# (the repository's, which DAGSTER_HOME links to). Logs at warning level: at info the daemon logs a line
# per sensor every 30 s.
UI_PORT ?= 3000
ui: install home
	$(call ensure_dg)
	@echo "Dagster UI: http://127.0.0.1:$(UI_PORT) (webserver and daemon of $(DAGSTER_HOME); Ctrl-C stops both)"
	cd $(DAGSTER_HOME) && $(abspath $(BIN))/dg dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p $(UI_PORT) \
	  --log-level warning

# PNGs of the asset graph and a partition's checks for the README (after `make demo`): headless Debian
# Chromium driven by Playwright, against a webserver on a free port over the demo's instance.
screenshots: install home
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && $(APT_INSTALL) chromium; } \
	  || { echo "screenshots need Debian's chromium: sudo apt-get install chromium"; exit 1; }
	$(PIP) install --quiet --disable-pip-version-check -e '.[screenshots]'
	$(BIN)/python scripts/ui_screenshots.py --out docs

clean:
	rm -rf $(DAGSTER_HOME) $(NEXUS_DATA_DIR)/raw-curriculum $(NEXUS_DATA_DIR)/processed $(NEXUS_DATA_DIR)/vkp
