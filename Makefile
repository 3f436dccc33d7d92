# Two commands for a newcomer: `make demo` (build everything locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export NEXUS_DATA_DIR ?= $(CURDIR)/data
PYTEST_ARGS ?=

.PHONY: install install-test ocr home demo demo-aws build test test-fast lint ui validate screenshots clean

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
install-test: $(VENV)/.installed-test ocr

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

# PNGs of the asset graph and a partition's checks for the README (after `make demo`): headless Debian
# Chromium driven by Playwright, against a webserver on a free port over the demo's instance.
screenshots: install home
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && $(APT_INSTALL) chromium; } \
	  || { echo "screenshots need Debian's chromium: sudo apt-get install chromium"; exit 1; }
	$(PIP) install --quiet --disable-pip-version-check -e '.[screenshots]'
	$(BIN)/python scripts/ui_screenshots.py --out docs

clean:
	rm -rf $(DAGSTER_HOME) $(NEXUS_DATA_DIR)/raw-curriculum $(NEXUS_DATA_DIR)/processed $(NEXUS_DATA_DIR)/vkp
