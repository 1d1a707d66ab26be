"""What every benchmark shares: the machine's description, markdown tables, quiet runs of the real CLI."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def quiet() -> None:
    """Lightning's info lines off, as the CLI has them; the CLI's warning about in-process arguments off."""
    from lit_linreg.cli import quiet_console

    quiet_console("WARNING")
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}"


def markdown(header: list[str], rows: list[list], aligns: str | None = None) -> str:
    aligns = aligns or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in aligns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(out: Path, name: str, text: str) -> Path:
    """benchmarks/results/<name>.md (untracked): `python -m benchmarks.readme` copies it into the README."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.md"
    path.write_text(text.rstrip() + "\n")
    print(f"\nwrote {path}")
    return path


def quiet_fit(args: list[str]):
    """Runs `train.py fit` in-process, its printing swallowed; returns the CLI and its ``Regression``."""
    from lit_linreg.callbacks import RunSummary
    from lit_linreg.cli import cli_main

    with contextlib.redirect_stdout(io.StringIO()):
        cli = cli_main(["fit", *args])
    return cli, next(c for c in cli.trainer.callbacks if isinstance(c, RunSummary)).result
