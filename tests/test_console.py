"""The console: a run prints its progress and its result, nothing of library banners, tips or warnings."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import ROOT, run_train

TABLE_HEADER = re.compile(r"^feature\s+true\s+estimate\s+std err")
RESULT_LINES = ("mean absolute error over", "pseudo-R²", "estimate: ", "warning: SGD has not converged", " steps in ")


@pytest.mark.slow
def test_default_run_prints_the_table_and_its_summary_lines_only(tmp_path):
    result = run_train(tmp_path, "fit", "--report.plot", "false")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no tips, no warnings, no "GPU available"
    lines = result.stdout.splitlines()
    assert TABLE_HEADER.match(lines[0]), lines[0]
    assert len(lines) == 1 + 5 + len(RESULT_LINES)  # header, 4 weights and the bias, the summary lines
    for line, start in zip(lines[6:], RESULT_LINES, strict=True):
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


@pytest.mark.slow
def test_log_level_info_brings_lightnings_messages_back(tmp_path):
    result = run_train(tmp_path, "fit", "--report.plot", "false", "--trainer.max_epochs", "1", "--log_level", "INFO")
    assert result.returncode == 0
    assert "GPU available" in result.stdout + result.stderr and "Seed set to 42" in result.stdout + result.stderr


@pytest.mark.slow
def test_long_runs_in_a_log_file_print_a_line_now_and_then(tmp_path):
    args = ["fit", "--report.optimum", "false", "--report.plot", "false", "--trainer.max_epochs", "150"]
    result = run_train(tmp_path, *args, "--trainer.callbacks+", '{"class_path": "lit_linreg.callbacks.LogLines", '
                       '"init_args": {"every_seconds": 0.02}}')  # fmt: skip
    progress = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert 2 <= len(progress) < 150 and "train/loss" in progress[-1]
