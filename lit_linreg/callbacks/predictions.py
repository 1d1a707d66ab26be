"""PredictionWriter: ``predict`` writes the rows it read with a prediction column, in the same file format."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lit_linreg.errors import UsageError
from lit_linreg.report import shown_path


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions-<input>.<csv|parquet|arrow>`` in the checkpoint's run directory: every column of the
    rows predicted, plus ``<target>_prediction`` (empty where a used cell was missing), and prints its path.

    With ``interval`` (``confidence`` or ``prediction``) it adds ``<target>_estimate``, ``<target>_lower`` and
    ``<target>_upper``: the exact optimum's prediction and its (1 - alpha) interval, from the result the
    checkpoint's run holds (``Regression.predict``'s, as statsmodels' ``get_prediction``).
    """

    def __init__(self, interval: str | None = None, alpha: float = 0.05) -> None:
        super().__init__(write_interval="epoch")
        # Not ``self.interval``: BasePredictionWriter keeps its write interval under that name.
        self.interval_kind, self.alpha = interval, alpha

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module, predictions: list, batch_indices) -> None:
        log_dir = trainer.log_dir  # collective under DDP
        if trainer.world_size > 1:
            raise UsageError("predict runs in one process: set --trainer.devices 1")
        data = trainer.datamodule
        values = torch.cat(predictions).double().cpu().numpy()
        source = data.predict_table()
        columns = {f"{data.target}_prediction": values}
        if self.interval_kind is not None:
            from lit_linreg.api import load

            result = load(trainer.ckpt_path)
            columns.update(result.interval_at(source.x.double().numpy(), self.interval_kind, self.alpha))
        path = source.write(columns, Path(log_dir))
        skipped = source.table.num_rows - len(values)
        empty = f"; {skipped} rows left empty for missing cells (--data.missing drop)" if skipped else ""
        print(f"{len(values)} predictions of {data.target} written to {shown_path(path)}{empty}")
