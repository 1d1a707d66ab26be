"""Shared helpers: runs of the real CLI, in-process (fast) or as a process (as a user would run it)."""

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

# One math thread per process, set before torch is imported (and inherited by the processes tests start): the
# suite runs a test process per core, so each one's default of a thread per core would oversubscribe the machine,
# and OpenMP threads that wait spin. On 2 cores this took the suite from 243 s to 213 s; no result depends on it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from lit_linreg.cli import cli_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
DIABETES = ROOT / "examples" / "diabetes.csv"
LINNERUD = ROOT / "examples" / "linnerud.csv"
QUIET = ["--trainer.enable_progress_bar", "false"]
# The figure costs ~0.5 s a run: on only where a test looks at it.
NO_PLOT = ["--report.plot", "false"]


def fit(tmp_path: Path, *args: str, plot: bool = False):
    """Runs `train.py fit` in-process with its logs under tmp_path; returns the CLI (trainer, model, datamodule)."""
    return cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *QUIET, *([] if plot else NO_PLOT), *args])


def evaluate(tmp_path: Path, subcommand: str, *args: str):
    """Runs `train.py validate|test|predict` in-process with its logs under tmp_path."""
    return cli_main([subcommand, "--trainer.default_root_dir", str(tmp_path), *QUIET, *args])


def command_error(*argv: str) -> str:
    """Runs a command that must stop on bad input; returns its error, checked to be one line."""
    with pytest.raises(SystemExit) as exit_:
        cli_main(list(argv))
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


def fit_error(tmp_path: Path, *args: str) -> str:
    return command_error("fit", "--trainer.default_root_dir", str(tmp_path), *QUIET, *NO_PLOT, *args)


def log_dir(cli) -> Path:
    return Path(cli.trainer.log_dir)


def read_summary(cli) -> dict:
    return json.loads((log_dir(cli) / "summary.json").read_text())


def last_checkpoint(cli) -> Path:
    return log_dir(cli) / "checkpoints" / "last.ckpt"


def run_train(cwd: Path, *args: str, timeout: float = 240, env: dict[str, str] | None = None):
    """Runs `python train.py ...` as a real process, as a user would (needed for DDP, which re-launches it)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def forked(target: Callable[..., None], *args) -> Iterator[multiprocessing.Process]:
    """``target(*args)`` in a forked copy of this process (Lightning imported already: an interpreter start costs
    ~8 s here), SIGKILLed on the way out if it still runs: a test that fails while waiting for it must not leave
    it behind, holding the test process's exit."""
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    try:
        yield process
    finally:
        if process.exitcode is None:
            os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)


@pytest.fixture(scope="session")
def tutorial_run(tmp_path_factory):
    """The full tutorial experiment (seed.yaml), run once and shared by the tests that inspect its results."""
    tmp_path = tmp_path_factory.mktemp("tutorial")
    cli = fit(tmp_path, "--config", str(CONFIGS / "seed.yaml"), plot=True)
    return cli, read_summary(cli)


@pytest.fixture(scope="session")
def diabetes_run(tmp_path_factory):
    """The shipped table with configs/csv.yaml and a fifth of the rows held out, run once."""
    tmp_path = tmp_path_factory.mktemp("diabetes")
    cli = fit(
        tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--data.path", str(DIABETES), "--data.val_fraction", "0.2"
    )
    return cli, read_summary(cli)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (processes, DDP, kills: up to a minute each), the quick ones after, and each longest
    test at the head of a pair: pytest-xdist's load scheduling (``--maxschedchunk 1``) hands each test process
    two tests to start with, then the next one in this order as it finishes one. So the longest start at once,
    one on each process, and the last minutes are shared out in small pieces (started last, the DDP test had left
    one process running it alone for its final 27 s). The same order in every process, as pytest-xdist requires:
    a stable sort of the collected order."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    longest = [item for item in items if item.get_closest_marker("longest")]
    others = [item for item in items if not item.get_closest_marker("longest")]
    paired = [item for pair in zip(longest, others, strict=False) for item in pair]
    # What zip leaves over: the others past the longest, or the longest past the others (a longest test run alone).
    items[:] = paired + longest[len(others) :] + others[len(longest) :]
