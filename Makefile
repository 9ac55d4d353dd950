# segkit: every target creates the virtual environment first if it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOURCES := segkit tests $(wildcard scripts)
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
STORE ?= sqlite:///mlflow.db
ARTIFACTS ?= ./mlartifacts
EXPERIMENT ?= segkit
ARGS ?=

.PHONY: install train test test-all lint format ui server clean

install: $(STAMP)

# Reinstalls only when pyproject.toml changes; the stamp is written last, so an interrupted
# install is redone on the next call.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "segkit needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: install  ## the embedded default: UNet on the built-in synthetic dataset
	$(BIN)/python -m segkit.train $(ARGS)

test: install  ## the fast suite
	$(BIN)/python -m pytest -m "not slow and not gpu" $(ARGS)

test-all: install  ## everything, `slow` included
	$(BIN)/python -m pytest -m "not gpu" $(ARGS)

lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

format: install
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

ui: install  ## MLflow UI over the local store; first prints the URL of the runs table
	@$(BIN)/python scripts/ui_url.py --uri sqlite:///mlflow.db --experiment $(EXPERIMENT) \
		--url http://$(HOST):$(PORT)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host $(HOST) --port $(PORT)

# The tracking server parallel sweeps and multi-worker runs log to (tracking=server): one process
# owns the SQLite file. One worker, because several would write it at once; MLflow's job runner
# (GenAI evaluation jobs, unused here) is off to spare the CPU.
server: install  ## MLflow tracking server on $(HOST):$(PORT) over $(STORE)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri $(STORE) \
		--artifacts-destination $(ARTIFACTS) --host $(HOST) --port $(PORT) --workers 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
