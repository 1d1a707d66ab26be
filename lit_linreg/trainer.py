"""The Trainer settings every fit runs under, from the command line or from Python: defined once."""

from __future__ import annotations

from typing import Any

from lit_linreg.plan import plan_run

TRAINER_DEFAULTS: dict[str, Any] = {
    # Our sampler already splits every global batch across ranks; Lightning's must not replace it.
    "use_distributed_sampler": False,
    # LastCheckpoint replaces Lightning's per-epoch ModelCheckpoint.
    "enable_checkpointing": False,
    "enable_model_summary": False,
    # Nothing is logged per step (one self.log an epoch): 0 says so, and skips the step-log machinery.
    "log_every_n_steps": 0,
}
# Checkpoints are written to a temporary file, synced, then renamed: a kill mid-write leaves the last one whole.
CHECKPOINT_IO = "lit_linreg.callbacks.AtomicCheckpointIO"


def planned_trainer_arguments(data, model, trainer: dict[str, Any]) -> dict[str, Any]:
    """Plans the run (``plan.plan_run``: the rows are read here, so a bad cell is refused before anything is
    written) and returns the trainer arguments the plan decides, of those ``trainer`` leaves unset: the run length
    (``max_epochs``), and no validation loop when no rows are held out."""
    plan = plan_run(data, model)
    arguments: dict[str, Any] = {}
    if trainer.get("max_epochs") is None and trainer.get("max_steps", -1) in (-1, None):
        arguments["max_epochs"] = plan.epochs
    if not data.hparams.val_fraction and trainer.get("limit_val_batches") is None:
        arguments["limit_val_batches"] = 0
    return arguments
