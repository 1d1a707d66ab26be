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
# The lowest versions pyproject.toml allows, installed side by side to test that claim (`make test-lowest`).
# (The test tools, statsmodels, pytest and pytest-xdist, are the newest that install beside them. pyparsing is
# matplotlib's: 3.3 deprecates names matplotlib 3.8.0 calls, whose notices would reach a console showing warnings.)
LOWEST_VENV := .venv-lowest
LOWEST      := "lightning==2.6.0" "jsonargparse[signatures]==4.43.0" "tensorboard==2.21.0" "numpy==1.26.0" \
               "scipy==1.11.1" "matplotlib==3.8.0" "pyparsing<3.3" "pyarrow==15.0.0" "pandas==2.1.1" \
               "scikit-learn==1.6.0" "statsmodels>=0.15" "pytest>=8,<10" "pytest-xdist>=3.5"
# One test process per core the suite may use (pytest-xdist), each given the next test as it finishes one, the
# longest first (tests/conftest.py): the slow tests are mostly start-up of processes, not arithmetic, and overlap.
PYTEST := -m pytest -n auto --dist load --maxschedchunk 1
# Where `make bench` writes its tables: untracked, so a run rewrites nothing in the repository.
RESULTS ?= benchmarks/results

.PHONY: train test test-fast test-lowest test-loaded lint format bench bench-peers bench-coverage bench-tables \
        bench-data bench-wide bench-start bench-all readme tensorboard clean clean-runs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

train: $(STAMP)
	$(BIN)/python train.py fit --config configs/seed.yaml

test: lint
	$(BIN)/python $(PYTEST)

# The edit-test loop: everything but the tests marked slow (processes, DDP, kills, public tables, Monte Carlo).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

$(LOWEST_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(LOWEST_VENV)/bin/python -m pip install --quiet $(LOWEST)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

# The whole suite against the lowest declared versions: reading, memory-mapping, the CLI in real processes,
# checkpoints and kills all touch a dependency's behaviour.
test-lowest: $(LOWEST_VENV)/.installed
	$(LOWEST_VENV)/bin/python -m pip list 2>/dev/null | grep -iE "^(torch|lightning|jsonargparse|numpy|scipy|pyarrow|matplotlib|tensorboard|statsmodels) "
	$(LOWEST_VENV)/bin/python $(PYTEST) -q

# The suite as a slower machine runs it: its workers and a busy loop share one core. No test may depend on the
# machine's speed, so this passes too, in several times the time.
test-loaded: lint
	taskset -c 0 sh -c 'while :; do :; done & busy=$$!; \
		$(BIN)/python $(PYTEST) -q; status=$$?; kill $$busy; exit $$status'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_fit --out $(RESULTS)

bench-peers: $(STAMP)
	$(BIN)/python -m benchmarks.bench_peers --out $(RESULTS)

bench-coverage: $(STAMP)
	$(BIN)/python -m benchmarks.coverage --out $(RESULTS)
	$(BIN)/python -m benchmarks.coverage --part wide --designs 16x3 --datasets 5000 --out $(RESULTS)

bench-tables: $(STAMP)
	$(BIN)/python -m benchmarks.public_tables --out $(RESULTS)

bench-data: $(STAMP)
	$(BIN)/python -m benchmarks.bench_data --out $(RESULTS)

bench-wide: $(STAMP)
	$(BIN)/python -m benchmarks.bench_wide --out $(RESULTS)

bench-start: $(STAMP)
	$(BIN)/python -m benchmarks.bench_start --out $(RESULTS)

# Every benchmark, one after another (each alone on the machine: timings are not shared), then the README's figures.
bench-all: bench bench-peers bench-coverage bench-tables bench-data bench-wide bench-start readme

# Copies benchmarks/results/*.md into README.md's marked blocks and reruns the commands it shows.
readme: $(STAMP)
	$(BIN)/python -m benchmarks.readme

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir lightning_logs --port 0

# Keeps lightning_logs (your runs' results); `make clean-runs` removes them too.
clean:
	rm -rf $(VENV) $(LOWEST_VENV) .pytest_cache .ruff_cache *.egg-info

clean-runs:
	rm -rf lightning_logs
