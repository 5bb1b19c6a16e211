# Two commands on a fresh machine: `make run` (one whole flywheel turn) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_RESULTS_LOCAL_STORAGE_PATH := $(CURDIR)/.prefect/results
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export DVC_NO_ANALYTICS := 1

.PHONY: run test test-fast setup lint format bench bench-peers

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull gigabytes of CUDA
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(BIN)/flywheel init
	$(BIN)/flywheel turn

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup  # everything but the end-to-end runs marked slow
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	mkdir -p data/reports/bench
	for s in sim runtime ingest mining model mbdp calibration deploy scale; do $(BIN)/flywheel bench $$s --json data/reports/bench/$$s.json || exit 1; done

bench-peers:  # the programs `flywheel bench mbdp` measures beside the MBDP (it runs these itself when they are missing)
	apt-get update -q
	apt-get install -y -q sox lsp-plugins-lv2 lilv-utils
