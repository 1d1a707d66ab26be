# Two commands do everything on a fresh machine: `make train` and `make test`.
# Each sets up its own virtual environment in .venv first (once; again when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
# The torch build to install. torch==2.13.0 is small and CPU-only where a local wheel exists (as on our CI);
# from PyPI on Linux it is the CUDA build. CPU-only elsewhere:
#   make TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: train test lint format bench tensorboard clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

train: $(STAMP)
	$(BIN)/python train.py fit --config configs/seed.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fit.py

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir lightning_logs --port 0

clean:
	rm -rf $(VENV) lightning_logs .pytest_cache .ruff_cache *.egg-info
