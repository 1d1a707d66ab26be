"""EvaluationRows: ``validate`` and ``test`` say which rows their metrics measure."""

from __future__ import annotations

import lightning as L


class EvaluationRows(L.Callback):
    """Prints, before the metrics, the rows being measured: the checkpoint's held-out rows, the training rows
    when none were held out, or the rows of another file."""

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "validate":
            self._say("validate", trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._say("test", trainer)

    @staticmethod
    def _say(stage: str, trainer: L.Trainer) -> None:
        if trainer.is_global_zero:
            print(f"{stage}: {trainer.datamodule.describe_rows()} (metrics in the table's units)")
