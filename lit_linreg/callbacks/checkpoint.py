"""``checkpoints/last.ckpt``: written atomically, kept current on a time cadence, and written once more on Ctrl-C.

A checkpoint holds the weights, the optimizer, Lightning's loop counters and the epoch's running loss. The rows
each step reads are a function of the global step, so a run resumed from any saved point, mid-epoch included,
continues exactly as it would have: there is no loader or random state to save.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_linreg.errors import UsageError

# How often, at most, the cadence and Ctrl-C are looked at: every step costs an integer comparison only.
POLL_SECONDS = 0.2
# Ctrl-C, and the polite stop of schedulers, containers and `kill`: each ends the run after the current step.
STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, fsyncs it, then renames it over the target.

    A process killed mid-write leaves the previous checkpoint intact (a rename within one directory is atomic).
    Loading is always ``weights_only=True``: a checkpoint is a file people pass around, and loading one must not
    run code.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


class LastCheckpoint(L.Callback):
    """Keeps ``checkpoints/last.ckpt`` in the run's directory up to date, and stops cleanly on Ctrl-C.

    It saves at the end of fit, at the end of every ``every_n_epochs``-th epoch, and, so that a long run never
    loses more than ``every_seconds`` of work, after any step once that much time has passed. The first Ctrl-C
    (SIGINT) or SIGTERM (what a batch scheduler or ``docker stop`` sends) ends the run after the current step with
    a checkpoint to resume from; a second one stops at once.
    Every step costs one integer comparison: the clock and the signal are looked at every ~0.2 s of training,
    and under DDP the ranks agree at those steps with one all-reduce.

    Args:
        every_seconds: the most training time a crash can lose; 0 saves after every step.
        every_n_epochs: also save at the end of every n-th epoch; 0 turns that off.
    """

    def __init__(self, every_seconds: float = 60.0, every_n_epochs: int = 0) -> None:
        if not every_seconds >= 0:
            raise UsageError(f"--checkpoint.every_seconds must be >= 0, got {every_seconds}")
        if every_n_epochs < 0:
            raise UsageError(f"--checkpoint.every_n_epochs must be >= 0, got {every_n_epochs}")
        self.every_seconds, self.every_n_epochs = every_seconds, every_n_epochs
        self.path: Path | None = None
        self.interrupted = False
        self.signal: int | None = None  # the signal that stopped the run
        self._signalled = False
        self._saved_at, self._saved_step = 0.0, -1
        self._next_poll, self._polled_at, self._polled_step, self._poll_every = 0, 0.0, 0, 1
        self._save_at_epoch_end = False
        self._previous_handlers: dict[int, Any] = {}
        self.writes = True  # False: only the clean stop on a signal (lit_linreg.fit without a root_dir)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.path = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / "last.ckpt"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now, step = time.monotonic(), trainer.global_step
        self._saved_at, self._saved_step = now, step
        self._polled_at, self._polled_step, self._next_poll = now, step, step + 1
        if threading.current_thread() is threading.main_thread():
            for signum in STOPPING_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signalled:  # a second one: stop now, as Python would on Ctrl-C
            self._restore_handlers()
            raise KeyboardInterrupt
        self._signalled, self.signal = True, signum

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step < self._next_poll and step != trainer.max_steps:
            return
        interrupted, due = self._poll(trainer)
        # A save after the epoch's last step is left to the epoch end: Lightning's epoch counters are only
        # consistent for a resume once the epoch is closed.
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches
        wanted = interrupted or due or step == trainer.max_steps
        if wanted and last_of_epoch:
            self._save_at_epoch_end = True
        elif wanted:
            self._save(trainer, pl_module)
        if interrupted:
            self.interrupted = True
            trainer.should_stop = True

    def _poll(self, trainer: L.Trainer) -> tuple[bool, bool]:
        now, step = time.monotonic(), trainer.global_step
        if step > self._polled_step:
            seconds_per_step = (now - self._polled_at) / (step - self._polled_step)
            every = 1 if self.every_seconds == 0 else max(1, int(POLL_SECONDS / max(seconds_per_step, 1e-9)))
        else:  # polled again at the same step (an epoch's end after its last batch): no new timing to learn from
            every = self._poll_every
        flags = torch.tensor([float(self._signalled), float(now - self._saved_at >= self.every_seconds), float(every)])
        if trainer.world_size > 1:  # every rank polls at the same steps, so they can agree
            flags = trainer.strategy.reduce(flags.to(trainer.strategy.root_device), reduce_op="max").cpu()
        self._poll_every = int(flags[2])
        self._polled_at, self._polled_step, self._next_poll = now, step, step + self._poll_every
        return bool(flags[0]), bool(flags[1])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every epoch end is also a poll (every rank reaches it at the same step): a run whose epochs are shorter
        # than the polling interval would otherwise finish without ever seeing its Ctrl-C.
        interrupted, due = self._poll(trainer)
        self.interrupted = self.interrupted or interrupted
        by_epoch = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if by_epoch or due or self.interrupted or self._save_at_epoch_end:
            self._save(trainer, pl_module)
        self._save_at_epoch_end = False
        if self.interrupted:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, pl_module)
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == self._saved_step:  # nothing new since the last save
            return
        pl_module.check_finite()  # a diverged run stops here, and the last checkpoint stays finite
        if self.writes:
            trainer.save_checkpoint(self.path, weights_only=False)  # the full state: resume needs all of it
        self._saved_at, self._saved_step = time.monotonic(), trainer.global_step
