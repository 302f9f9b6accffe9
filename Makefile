# The README's commands. Each target installs what it needs into .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install demo test lint types unit bench report clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The whole story on the embedded two-region sandbox (no AWS account needed).
demo: $(STAMP)
	$(BIN)/iot-crr demo --out out

## Everything CI checks: lint, formatting, types, the whole test suite (2 workers).
test: lint types unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -p no:cacheprovider

## Benchmarks with targets; results under bench/results/.
bench: $(STAMP)
	$(BIN)/python -m bench

## Render the drift notebooks to HTML from the nightly runs' artefacts ($REPORT_LOCATION, else
## out/reports, which `make demo` writes).
report: $(STAMP)
	@[ -n "$$REPORT_LOCATION" ] || [ -d out/reports ] || $(MAKE) demo
	$(BIN)/python -m jobs.notebooks --render

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
