# The README's commands. Each target installs what it needs into .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install demo demo-failover test lint types scan unit conformance bench report screenshots lock clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The whole story on the embedded two-region sandbox (no AWS account needed).
demo: $(STAMP)
	$(BIN)/iot-crr demo --out out

## Failover and failback on the two-way sandbox (docs/failover.md), about a minute.
demo-failover: $(STAMP)
	$(BIN)/iot-crr demo --failover

## Everything CI checks: lint, formatting, import layers, types, the IaC scan, the whole test
## suite (2 workers). The two venvs install at once (mostly downloads), types and the scan run
## side by side (one core each), then the suite takes both cores and names its 15 slowest
## tests (CI's budget is 15 minutes). Files go to the workers longest first (tests/conftest.py,
## LONGEST_FIRST): --no-loadscope-reorder keeps that order (xdist would otherwise hand out the
## files with the most tests first, leaving the long few-test files for last).
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(CHECKOV_STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint types scan
	@$(MAKE) --no-print-directory unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

## checkov over the templates and the Dockerfile. Its own venv: checkov pins boto3 exactly and
## caps networkx and packaging below what the project's moto and cfn-lint need. Suppressions live
## next to their resource (Metadata.checkov.skip / `# checkov:skip=`), each with its reason.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV    := .venv-checkov
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
CHECKOV         := $(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download

$(CHECKOV_STAMP):
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

scan: $(CHECKOV_STAMP)
	$(CHECKOV) --framework cloudformation --directory infra
	$(CHECKOV) --framework dockerfile --file Dockerfile

unit: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder -p no:cacheprovider --durations=15

## The conformance scenarios (docs/conformance.md): on the embedded sandbox by default (make test
## runs them too); on a real account's two regions with
## ARGS="--aws --source-region R1 --destination-region R2 --source-stack NAME".
conformance: $(STAMP)
	$(BIN)/pytest tests/conformance -p no:cacheprovider $(or $(ARGS),-n 2 --dist loadfile --no-loadscope-reorder)

## Benchmarks with targets; results under bench/results/.
bench: $(STAMP)
	$(BIN)/python -m bench

## Render the drift notebooks to HTML from the nightly runs' artefacts ($REPORT_LOCATION, else
## out/reports, which `make demo` writes).
report: $(STAMP)
	@[ -n "$$REPORT_LOCATION" ] || [ -d out/reports ] || $(MAKE) demo
	$(BIN)/python -m jobs.notebooks --render

## Re-lock the job image's and the zip Lambdas' dependencies (hashes for every platform file).
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(LOCK) --output-file infra/requirements-job.txt pyproject.toml infra/requirements-job.in
	$(LOCK) --output-file infra/requirements-lambda.txt infra/requirements-lambda.in

## `sam build` runs these for the zip Lambdas (Metadata.BuildMethod: makefile in the templates):
## each package holds the pipeline package and its locked dependencies for the functions'
## runtime (Python 3.12 on arm64), nothing else from the repository.
LAMBDA_PLATFORM := --platform manylinux2014_aarch64 --implementation cp --python-version 3.12 --only-binary=:all:
build-PersistFunction build-ReplicatorFunction build-PendingFunction:
	$(PYTHON) -m pip install --quiet --no-compile --no-deps --require-hashes $(LAMBDA_PLATFORM) \
		--target "$(ARTIFACTS_DIR)" -r infra/requirements-lambda.txt
	cp -R pipeline "$(ARTIFACTS_DIR)/pipeline"
	find "$(ARTIFACTS_DIR)/pipeline" -name __pycache__ -prune -exec rm -rf {} +

## Whole-page screenshots of the HTML drift and readiness reports and the rendered notebooks in headless Chromium (installed
## from Debian's packages if missing and run as root), in out/screenshots/. Look at them.
screenshots: report
	@[ -f out/drift.html ] || $(MAKE) demo
	scripts/screenshots.sh out/screenshots out/drift.html out/notebooks/drift_report.html \
		out/notebooks/drift_trends.html out/readiness.html out/readiness-not-ready.html

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) out .mypy_cache .ruff_cache .pytest_cache
