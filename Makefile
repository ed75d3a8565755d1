# Every set-up step lives here so that a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# jsii warns about every end-of-life Node major it runs on; silence it for the local one.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null)
CDK := node_modules/.bin/cdk
CDK_CLI ?= aws-cdk@2
CDK_ARGS ?=

.PHONY: install test lint typecheck unit dates chaos demo bench clean synth screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,infra]'
	touch $(STAMP)

# The UI's browser libraries (htmx, Chart.js, js-sha256) from npm, pinned by ui/package-lock.json,
# copied into the package's static files (git-ignored; served at /static/vendor/).
UI_VENDOR := sdk/stratoflow/ui/static/vendor
UI_VENDOR_FILES := ui/node_modules/htmx.org/dist/htmx.min.js \
	ui/node_modules/chart.js/dist/chart.umd.min.js \
	ui/node_modules/js-sha256/build/sha256.min.js
UI_STAMP := $(UI_VENDOR)/.installed

$(UI_STAMP): ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(UI_VENDOR)
	cp $(UI_VENDOR_FILES) $(UI_VENDOR)/
	touch $@

# Debian's Chromium for the browser tests (tests/browser): Playwright (dev extra) drives
# it by path; `playwright install` (a browser build of its own, downloaded) is never run.
# Installed only when it is missing (we are root: no sudo).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		chromium chromium-driver

install: $(STAMP) $(UI_STAMP) $(CHROMIUM)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit dates

# The tests marked date_sensitive (TTLs, schedules, event windows, caches) once more with
# the wall clock moved, emulator included: 400 days ahead, across the next leap day and
# across New York's next spring-forward (tests/timeshift.py; libfaketime from the dev
# extra). One shift by hand: $(BIN)/python -m tests.timeshift +400d -- $(BIN)/pytest
dates: install
	$(BIN)/python -m tests.timeshift --matrix -- $(BIN)/pytest -p no:cacheprovider -m date_sensitive

# The fault-injection suite (tests/chaos, docs/reliability.md) at full scale: 200 scheduled
# runs under 20 poller kills, 100 runs with duplicate deliveries, ... `make test` runs the
# same tests at a size that fits (CHAOS_SCALE=default). CHAOS_SEED=<n> changes the seed.
chaos: install
	CHAOS_SCALE=full $(BIN)/pytest tests/chaos

# The screenshots docs/ui.md shows, retaken by the browser tests (tests/browser).
screenshots: install
	STRATOFLOW_UI_SCREENSHOTS=docs $(BIN)/pytest -p no:cacheprovider tests/browser/test_browser_pages.py

demo: install
	$(BIN)/python examples/demo.py

# Every benchmark on the embedded stack (8-10 minutes on 2 cores): bench/results.json,
# bench/results.png and a table with the targets (docs/performance.md).
bench: install
	$(BIN)/python -m bench.run_all

# The CDK CLI, from npm, into ./node_modules (not part of `make test`).
$(CDK):
	npm install --no-save --no-audit --no-fund --loglevel=error $(CDK_CLI)

# Synthesize the CDK app offline (no AWS credentials, no AWS call): the Lambda code is
# bundled locally with pip (no Docker). Options: make synth CDK_ARGS='-c stage=prod'.
synth: install $(CDK)
	PATH="$(CURDIR)/$(BIN):$$PATH" AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_CLI_TELEMETRY=true \
		$(CDK) synth --quiet --no-notices $(CDK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cdk.out node_modules ui/node_modules $(UI_VENDOR)
