"""Checkpoints: written atomically to ``checkpoints/last.ckpt``, read safely, checked before Lightning reads them.

A checkpoint holds the weights, the optimizer, Lightning's loop counters, the position inside the epoch's
shuffle (the training DataLoader is resumable) and the running mean of the epoch's loss, so a run resumed from
any saved point, mid-epoch included, continues exactly as it would have. There is no random state to save:
the shuffle depends only on (seed, epoch).
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lit_linreg.errors import UsageError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to a temporary file beside the target, then renames it over the target.

    A process killed mid-write leaves the previous checkpoint intact (a rename within one directory is atomic;
    Lightning's default writes through a temporary file that may live on another file system). Loading is
    always ``weights_only=True``: a checkpoint is a file people pass around, and loading one must not run code.
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
    """Keeps ``checkpoints/last.ckpt`` in the run's directory up to date.

    It saves at the end of fit, at the end of every ``every_n_epochs``-th epoch, and, so that a long run never
    loses more than ``every_seconds`` of work, after any ``training_step`` call (mid-epoch) once that much time
    has passed since the last save. A save costs 1-2 ms here, several SGD steps, so the default saves by time.

    Args:
        every_seconds: the most training time a crash can lose; 0 saves after every training_step call.
        every_n_epochs: also save at the end of every n-th epoch; 0 turns that off.
    """

    def __init__(self, every_seconds: float = 60.0, every_n_epochs: int = 0) -> None:
        if not every_seconds >= 0:
            raise UsageError(f"--checkpoint.every_seconds must be >= 0, got {every_seconds}")
        if every_n_epochs < 0:
            raise UsageError(f"--checkpoint.every_n_epochs must be >= 0, got {every_n_epochs}")
        self.every_seconds, self.every_n_epochs = every_seconds, every_n_epochs
        self.path: Path | None = None
        self._saved_at, self._saved_step = 0.0, -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.path = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / "last.ckpt"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._saved_at, self._saved_step = time.monotonic(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # The epoch's last call is saved by on_train_epoch_end instead: a resume from a state saved after the
        # last batch but before the epoch end leaves Lightning's epoch counters off by one in later saves.
        if batch_idx + 1 < trainer.num_training_batches and self._due(trainer):
            self._save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        by_epoch = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if by_epoch or self._due(trainer):
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _due(self, trainer: L.Trainer) -> bool:
        # A run stopped by max_steps mid-epoch must be saved here: by on_train_end Lightning has already
        # marked the epoch finished, and a resume from that state would skip the rest of the epoch.
        if 0 < trainer.max_steps <= trainer.global_step:
            return True
        # Saving is collective under DDP, so every rank must agree: rank 0's clock decides.
        return trainer.strategy.broadcast(time.monotonic() - self._saved_at >= self.every_seconds)

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._saved_step:  # nothing new since the last save
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state: resume needs all of it
        self._saved_at, self._saved_step = time.monotonic(), trainer.global_step


def read_checkpoint(path: str) -> dict[str, Any]:
    """Loads a lit_linreg checkpoint safely (``weights_only=True``: plain types only, no code runs)."""
    if not Path(path).is_file():
        raise UsageError(f"--ckpt_path {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UsageError(
            f"--ckpt_path {path} is not a torch checkpoint, or holds objects that are unsafe to load"
        ) from None
    except Exception as err:  # torch.load raises many types for truncated or corrupt files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"--ckpt_path {path} is not a readable checkpoint ({reason[:120]})") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not {"w", "b"} <= set(state):
        raise UsageError(f"--ckpt_path {path} is not a lit_linreg checkpoint (it holds no w and b)")
    return checkpoint


def check_resume(checkpoint: dict[str, Any], config: dict[str, Any], path: str) -> None:
    """Refuses to resume a fit with hyperparameters other than the checkpoint's.

    Lightning would let the checkpoint's model hyperparameters override the command line silently, and would
    use the command line's data arguments: either way the resumed run would not be the run that was saved.
    """
    saved = {
        "model": checkpoint.get("hyper_parameters", {}),
        "data": checkpoint.get("datamodule_hyper_parameters", {}),
    }
    given = {
        "model": config.get("model") or {},
        "data": {**(config.get("data") or {}), "seed": config.get("seed_everything")},
    }
    differences = [
        f"--{'seed_everything' if key == 'seed' else f'{section}.{key}'} {given[section][key]} (checkpoint: {value})"
        for section in ("model", "data")
        for key, value in saved[section].items()
        if key in given[section] and given[section][key] != value
    ]
    if differences:
        raise UsageError(
            f"--ckpt_path {path} was trained with other settings than this run: {'; '.join(differences)}. "
            "Resume with the checkpoint's settings (its config.yaml), or start a new run without --ckpt_path"
        )
