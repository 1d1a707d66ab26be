"""TensorBoardReport: what TensorBoard shows as the run goes, in agreement with the printed table.

- ``train/loss`` (the epoch's mean), ``weights/<feature>`` and ``weights/bias`` every epoch, all at
  ``global_step``; the weights in the table's own units (those the model reports: tail averages once averaging
  has started);
- with planted data, ``planted/<feature>`` at the first and last step and ``train/w_distance``, the distance
  to the planted weights;
- a CUSTOM SCALARS chart per weight, its trajectory beside its planted value (tags are regular expressions in
  TensorBoard, so each is escaped and anchored to draw exactly one series);
- the HPARAMS tab: the model's and the data's settings as used, with ``hp_metric`` = the final training loss;
- ``report``, the figure of ``report.png`` (written by ``RunSummary`` at the end of fit).
"""

from __future__ import annotations

import re

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger


class TensorBoardReport(L.Callback):
    """Logs the settings, the weights every epoch and the planted values to the trainer's logger (any logger;
    the CUSTOM SCALARS charts need TensorBoard's)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The settings as used, before Lightning first writes hparams.yaml (at fit start); an empty metrics dict
        # logs no placeholder hp_metric of -1.
        if trainer.logger is not None:
            trainer.logger.log_hyperparams(_hyperparameters(trainer, pl_module), {})

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if isinstance(trainer.logger, TensorBoardLogger):
            names = [*pl_module.feature_names, "bias"]
            charts = {n: ["Multiline", [_exactly(f"weights/{n}"), _exactly(f"planted/{n}")]] for n in names}
            trainer.logger.experiment.add_custom_scalars({"weights vs planted": charts})
        _log_planted(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The epoch's loss and the weights the model reports, at ``global_step``."""
        if trainer.logger is None:
            return
        w, b = pl_module.coefficients()
        scalars = {f"weights/{name}": v for name, v in zip(pl_module.feature_names, w.tolist(), strict=True)}
        scalars["weights/bias"] = float(b)
        if "train/loss" in trainer.callback_metrics:  # here, not by Lightning, which logs it at global_step - 1
            scalars["train/loss"] = float(trainer.callback_metrics["train/loss"])
        data = trainer.datamodule
        if data.true_w is not None:
            planted = torch.tensor(data.true_w, dtype=w.dtype)
            scalars["train/w_distance"] = float(torch.linalg.vector_norm(w - planted))
        trainer.logger.log_metrics(scalars, step=trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The planted values' last points, and the HPARAMS tab's metric: the final epoch's training loss."""
        _log_planted(trainer, pl_module)  # a constant: its first and last points draw the whole line
        loss = trainer.callback_metrics.get("train/loss")
        if trainer.logger is not None and loss is not None:
            trainer.logger.log_hyperparams(_hyperparameters(trainer, pl_module), {"hp_metric": float(loss)})


def _hyperparameters(trainer: L.Trainer, model: L.LightningModule) -> dict:
    """The model's and the data's settings as used: the chosen batch size and lr, not ``null``."""
    data = trainer.datamodule
    return {
        **{f"model/{k}": v for k, v in model.hparams.items() if not k.startswith("_")},
        **{f"data/{k}": v for k, v in data.hparams.items() if not k.startswith("_")},
        "data/batch_size": data.plan.batch_size,
        "model/lr": model.lr,
    }


def _log_planted(trainer: L.Trainer, model: L.LightningModule) -> None:
    data = trainer.datamodule
    if trainer.logger is None or data.true_w is None:
        return
    planted = {f"planted/{n}": w for n, w in zip(model.feature_names, data.true_w, strict=True)}
    planted["planted/bias"] = data.true_b
    trainer.logger.log_metrics(planted, step=trainer.global_step)


def _exactly(tag: str) -> str:
    return f"^{re.escape(tag)}$"
