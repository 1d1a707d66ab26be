"""Where a command writes: each fit in a run directory of its own, the other commands in their checkpoint's.

A fit's directory is ``<root>/lightning_logs/version_N``, as Lightning names it, but claimed with one ``mkdir``
(atomic) rather than chosen by listing the directories already there, so that fits started together never share
one. Under DDP the first process claims it and the processes it launches inherit the number. ``validate``,
``test`` and ``predict`` write (predictions) into the directory of the run their checkpoint belongs to.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

# Set by the process that claimed the run directory, for the DDP processes it launches (they inherit its env).
RUN_VERSION = "LIT_LINREG_RUN_VERSION"


def claim_run_directory(root: str | os.PathLike) -> Path:
    """A new ``lightning_logs/version_N`` under ``root``: the lowest number above those there, made atomically."""
    base = Path(root) / "lightning_logs"
    base.mkdir(parents=True, exist_ok=True)
    numbers = [p.name.removeprefix("version_") for p in base.glob("version_*")]
    version = max((int(n) for n in numbers if n.isdigit()), default=-1) + 1
    while True:
        try:
            (base / f"version_{version}").mkdir()
            return base / f"version_{version}"
        except FileExistsError:  # another fit took it between our listing and our mkdir
            version += 1


def inherited_run_version() -> int | None:
    """The run directory's number when this process is one that a DDP run launched, else None."""
    version = os.environ.get(RUN_VERSION)
    return int(version) if version is not None else None


def discard_unfinished_run(directory: Path) -> None:
    """Removes a run directory that a command made and then failed in before it had saved a checkpoint (a
    one-line error promises that nothing was written)."""
    if not (directory / "checkpoints" / "last.ckpt").exists():
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):  # lightning_logs itself, if this run was its only one
            directory.parent.rmdir()


def checkpoint_run_directory(checkpoint: str | os.PathLike) -> Path:
    """The run directory a checkpoint belongs to: ``RUN`` for ``RUN/checkpoints/last.ckpt``, else its folder."""
    path = Path(checkpoint).absolute()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def fresh_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem.suffix``, or ``stem-2.suffix``, ``stem-3.suffix``...: the first name not taken, claimed
    by creating it, so that no file is replaced."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1_000_000):
        path = directory / (f"{stem}.{suffix}" if number == 1 else f"{stem}-{number}.{suffix}")
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory} holds a million files named {stem}-N.{suffix}")
