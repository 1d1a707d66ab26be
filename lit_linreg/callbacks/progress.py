"""Progress: Lightning's bar, redrawn at most every 100 steps, on a terminal; a line now and then in a log file."""

from __future__ import annotations

import sys
from time import monotonic

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

# A redraw costs ~0.3 ms, as much as an SGD step at batch 16: once per 100 steps is smooth to the eye and free.
REFRESH_STEPS = 100


class LogLines(ProgressBar):
    """For output that is not a terminal (a log file, a pipe): one line at most every ``every_seconds`` of
    training, with the epoch, the step and the training loss; nothing at all for shorter runs.

    Args:
        every_seconds: the least time between two lines.
    """

    def __init__(self, every_seconds: float = 10.0) -> None:
        super().__init__()
        self.every_seconds = every_seconds
        self._enabled = True
        self._printed_at = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._printed_at = monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now = monotonic()  # the module's name, so that a test can drive the clock
        if not self._enabled or not trainer.is_global_zero or now - self._printed_at < self.every_seconds:
            return
        self._printed_at = now
        loss = trainer.callback_metrics.get("train/loss")
        shown = "" if loss is None else f", train/loss {loss.item():.6g}"
        print(f"epoch {trainer.current_epoch}, step {trainer.global_step}{shown}", flush=True)


def progress_bar() -> ProgressBar:
    """The bar for this console: TQDM, throttled, on a terminal; ``LogLines`` elsewhere."""
    return TQDMProgressBar(refresh_rate=REFRESH_STEPS) if sys.stdout.isatty() else LogLines()
