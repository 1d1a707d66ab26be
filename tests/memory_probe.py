"""A callback for the memory tests: prints how much anonymous memory (RssAnon) training added."""

import re
from pathlib import Path

import lightning as L


def rss_anon_kb() -> int:
    return int(re.search(r"RssAnon:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


# Imported while the command line is parsed: after torch and Lightning, before any row is read.
BEFORE = rss_anon_kb()


class AnonymousMemory(L.Callback):
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(f"RssAnon growth {rss_anon_kb() - BEFORE} kB", flush=True)
