import json
import subprocess
import sys
from pathlib import Path

import pytest

from lit_linreg.cli import cli_main

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# The bootstrap (100 exact refits) and the figure cost ~1 s a run: on only where a test looks at them.
NO_EXTRAS = ["--report.bootstrap", "0", "--report.plot", "false"]


def fit(tmp_path: Path, *args: str, extras: bool = False):
    """Runs `train.py fit` in-process with its logs under tmp_path; returns the CLI (trainer, model, datamodule)."""
    return cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *QUIET, *([] if extras else NO_EXTRAS), *args])


def fit_error(tmp_path: Path, *args: str) -> str:
    """Runs a fit that must stop on bad input; returns its error, checked to be one line."""
    with pytest.raises(SystemExit) as exit_:
        fit(tmp_path, *args)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message


def read_summary(cli) -> dict:
    return json.loads((Path(cli.trainer.log_dir) / "summary.json").read_text())


def run_train(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Runs `python train.py ...` as a real process, as a user would (needed for DDP, which re-launches it)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def tutorial_run(tmp_path_factory):
    """The full tutorial experiment (seed.yaml), run once and shared by the tests that inspect its results."""
    tmp_path = tmp_path_factory.mktemp("tutorial")
    cli = fit(tmp_path, "--config", str(ROOT / "configs" / "seed.yaml"), extras=True)
    return cli, read_summary(cli)
