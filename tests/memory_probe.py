"""A callback for the memory tests: prints how much anonymous memory training added."""

import re
from pathlib import Path

import lightning as L


def anonymous_kb() -> int:
    """The process's anonymous pages, counted page by page (smaps_rollup): /proc/self/status's RssAnon is the
    kernel's per-CPU running count, which proc(5) calls inaccurate (it read 579 kB short of a fresh 56 MB array)."""
    rollup = Path("/proc/self/smaps_rollup").read_text()
    return int(re.search(r"^Anonymous:\s+(\d+) kB", rollup, re.MULTILINE).group(1))


# Imported while the command line is parsed: after torch and Lightning, before any row is read.
BEFORE = anonymous_kb()


class AnonymousMemory(L.Callback):
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(f"Anonymous growth {anonymous_kb() - BEFORE} kB", flush=True)
