"""The console: a run prints its progress and its result, nothing of library banners, tips or warnings."""

import fcntl
import itertools
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from lit_linreg.callbacks import LogLines, progress
from lit_linreg.cli import cli_main
from tests.conftest import CONFIGS, LINNERUD, NO_PLOT, ROOT, run_train

TITLE = "Least absolute deviations (Frisch-Newton interior point, exact vertex): relationships on 4 columns"
TABLE_HEADER = re.compile(r"^feature\s+true\s+estimate\s+std err")
RESULT_LINES = ("mean absolute error over", "pseudo-R²", "estimate: ", "warning: SGD has not converged", " steps in ")


@pytest.mark.slow
def test_default_run_prints_the_table_and_its_summary_lines_only(tmp_path):
    # With Python's warnings shown, as pytest and many IDEs run programs.
    result = run_train(tmp_path, "fit", "--report.plot", "false", env={"PYTHONWARNINGS": "default"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no tips, no warnings, no "GPU available", no library's deprecation notices
    # A progress line ("epoch N, ...") comes every 10 s of training: on a slow enough machine there may be one.
    lines = [line for line in result.stdout.splitlines() if not line.startswith("epoch ")]
    assert lines[0].startswith(TITLE) and TABLE_HEADER.match(lines[1]), lines[:2]  # the method named first
    assert len(lines) == 2 + 5 + len(RESULT_LINES)  # title, header, 4 weights and the bias, the summary lines
    for line, start in zip(lines[7:], RESULT_LINES, strict=True):
        assert start in line, line


def run_in_terminal(cwd, *args: str) -> str:
    """Runs train.py with its output on a pseudo-terminal, as `make train` from a shell does."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(leader)
    assert process.returncode == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_on_a_terminal_the_bar_shows_and_lightnings_messages_do_not(tmp_path):
    out = run_in_terminal(tmp_path, "fit", "--report.plot", "false", "--trainer.max_epochs", "5")
    assert "Epoch 4: 100%" in out and "train/loss=" in out
    for noise in ("GPU available", "Tip:", "Seed set", "UserWarning", "Deprecat", "site-packages", "|  Name"):
        assert noise not in out, noise


def test_log_level_info_brings_lightnings_messages_back(tmp_path, caplog):
    """In-process, as the records Lightning's loggers emit (a process's console is checked above)."""
    args = ["--trainer.max_epochs", "1", "--report.optimum", "false", "--log_level", "INFO"]
    cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *NO_PLOT, *args])
    assert "GPU available" in caplog.text and "Seed set to 42" in caplog.text
    caplog.clear()
    cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *NO_PLOT, *args[:-2]])  # WARNING again
    assert "GPU available" not in caplog.text and "Seed set to" not in caplog.text


def test_output_that_is_not_a_terminal_gets_log_lines_not_a_bar(tmp_path):
    cli = cli_main(["--trainer.default_root_dir", str(tmp_path)], run=False)  # pytest's stdout: no tty
    bars = [c for c in cli.trainer.callbacks if isinstance(c, progress.ProgressBar)]
    assert len(bars) == 1 and isinstance(bars[0], LogLines) and bars[0].every_seconds == 10


def test_log_lines_come_at_most_every_every_seconds(tmp_path, monkeypatch, capsys):
    """Driven by a clock that advances one second each time it is read (at train start and each epoch end), so
    what is printed depends on the cadence alone, not on how fast this machine trains."""
    ticks = itertools.count()
    monkeypatch.setattr(progress, "monotonic", lambda: float(next(ticks)))
    log_lines = '{"class_path": "lit_linreg.callbacks.LogLines", "init_args": {"every_seconds": 2.5}}'
    args = ["--trainer.max_epochs", "12", "--report.optimum", "false", "--trainer.callbacks+", log_lines]
    cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *NO_PLOT, *args])
    progress_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    # Read at 0 (start), then 1, 2, 3 (epoch 2: 3 s since the start, a line), 4, 5, 6 (epoch 5), ...
    assert [line.split(",")[:2] for line in progress_lines] == [
        [f"epoch {epoch}", f" step {32 * (epoch + 1)}"] for epoch in (2, 5, 8, 11)
    ]
    assert all(", train/loss " in line for line in progress_lines)


def test_a_long_analysis_is_announced_where_progress_is_shown(tmp_path, capsys):
    """Huber's refitted intervals take tens of seconds on the largest tables they are used on (64 rows, 21
    parameters): after training, a run that shows its progress says so before they start; the notebook API, which
    shows none, prints nothing (tests/test_api.py)."""
    data = ["--config", str(CONFIGS / "csv.yaml"), "--data.path", str(LINNERUD), "--data.target", "chins"]
    args = [*data, "--model.loss", "huber", "--trainer.max_epochs", "1"]
    cli_main(["fit", "--trainer.default_root_dir", str(tmp_path), *NO_PLOT, *args])
    lines = capsys.readouterr().out.splitlines()
    announced = "analysis: Huber's intervals refit 199 draws at each value tried (20 rows, 6 parameters)"
    assert lines.count(announced) == 1 and lines[lines.index(announced) + 1].startswith("Huber M-estimate"), lines
