"""Reporting: the end-of-fit table and exact optimum, ``summary.json``, ``report.png``, predictions, progress."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ProgressBar, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import TensorBoardLogger

from lit_linreg.errors import UsageError
from lit_linreg.model import LinearRegression
from lit_linreg.optimum import bootstrap_intervals, exact_fit

LOSS_NAMES = {"mae": "mean absolute error", "mse": "mean squared error", "huber": "mean Huber loss"}


def format_table(summary: dict) -> str:
    """feature | true | learned | error | optimum | 95% interval, one row per weight, then the bias."""
    names = [*summary["feature_names"], "bias"]
    columns = {"learned": [*summary["learned"]["w"], summary["learned"]["b"]]}
    if summary["true"] is not None:
        columns["true"] = [*summary["true"]["w"], summary["true"]["b"]]
        columns["error"] = [a - b for a, b in zip(columns["learned"], columns["true"], strict=True)]
    if summary["optimum"] is not None:
        columns["optimum"] = [*summary["optimum"]["w"], summary["optimum"]["b"]]
    order = [c for c in ("true", "learned", "error", "optimum") if c in columns]
    width = max(len(n) for n in [*names, "feature"])
    header = f"{'feature':<{width}}" + "".join(f"  {c:>10}" for c in order)
    intervals = summary["intervals"]
    if intervals is not None:
        header += f"  {'95% interval':>23}"
        bounds = [*intervals["w"], intervals["b"]]
    lines = [header]
    for i, name in enumerate(names):
        line = f"{name:<{width}}" + "".join(
            f"  {columns[c][i]:>+10.4f}" if c == "error" else f"  {columns[c][i]:>10.4f}" for c in order
        )
        if intervals is not None:
            line += f"  [{bounds[i][0]:>10.4f}, {bounds[i][1]:>10.4f}]"
        lines.append(line)
    return "\n".join(lines)


class RunSummary(L.Callback):
    """At the end of fit: the exact optimum, the table, ``summary.json`` and ``report.png`` in the run's directory.

    ``fit_seconds`` is the wall time of the fit loop alone (from ``on_train_start`` to ``on_train_end``):
    no imports, no data generation, no final report.

    Args:
        optimum: also solve for the exact optimum of the same loss on the same training rows.
        exact_max_rows: skip the exact optimum (with a note) above this many training rows for the MAE, whose
            linear program takes ~6 s at 100,000 rows x 10 features here; least squares and Huber always run.
        bootstrap: resamples for the 95% intervals of the weights (exact refits on rows drawn with
            replacement); ``null`` means 100 up to 5,000 training rows and none above; 0 turns them off.
        plot: write ``report.png`` and log the same figure to TensorBoard.
    """

    def __init__(
        self, optimum: bool = True, exact_max_rows: int = 100_000, bootstrap: int | None = None, plot: bool = True
    ) -> None:
        self.optimum, self.exact_max_rows, self.bootstrap, self.plot = optimum, exact_max_rows, bootstrap, plot
        self._started = 0.0
        self.fit_seconds = 0.0
        self.loss_history: list[float] = []  # one value per epoch; checkpointed, so it survives a resume

    def state_dict(self) -> dict:
        return {"loss_history": list(self.loss_history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loss_history = list(state_dict["loss_history"])

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "train/loss" in trainer.callback_metrics:
            self.loss_history.append(trainer.callback_metrics["train/loss"].item())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds = time.perf_counter() - self._started

    def on_fit_end(self, trainer: L.Trainer, pl_module: LinearRegression) -> None:
        log_dir = trainer.log_dir  # a collective call under DDP: every rank makes it
        if not trainer.is_global_zero or log_dir is None:
            return
        summary = self.summarize(trainer, pl_module)
        path = Path(log_dir) / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(format_table(summary))
        scale = " (standardized)" if summary["loss_scale"] == "standardized" else ""
        print(f"train loss ({LOSS_NAMES[summary['loss']]}{scale} over the training set): {summary['train_loss']:.6f}")
        if summary["optimum"] is not None:
            print(f"exact optimum: {summary['optimum']['loss']:.6f}, so SGD is {summary['loss_gap']:+.2%} above it")
        elif summary["optimum_note"]:
            print(summary["optimum_note"])
        if self.plot:
            from lit_linreg.figure import report_figure  # matplotlib costs ~0.5 s to import: only when used

            figure = report_figure(summary, self.loss_history)
            figure.savefig(Path(log_dir) / "report.png", dpi=110)
            if isinstance(trainer.logger, TensorBoardLogger):
                trainer.logger.experiment.add_figure("report", figure, trainer.global_step)
        print(f"{summary['global_step']} steps in {summary['fit_seconds']:.2f} s; logs and summary.json in {log_dir}")

    def summarize(self, trainer: L.Trainer, model: LinearRegression) -> dict:
        data = trainer.datamodule
        x, y = data.train_data
        with torch.no_grad():
            train_loss = model.loss(x.to(model.device), y.to(model.device)).item()
        w, b = data.to_original_units(model.w.detach().cpu(), model.b.detach().cpu())
        hp = model.hparams
        summary = {
            "feature_names": model.feature_names,
            "learned": {"w": w.tolist(), "b": b.item()},
            "true": None if data.true_w is None else {"w": list(data.true_w), "b": data.true_b},
            "loss": hp.loss,
            "loss_scale": "standardized" if data.scale is not None else "original",
            "train_loss": train_loss,
            "optimum": None,
            "optimum_note": None,
            "loss_gap": None,
            "intervals": None,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "fit_seconds": self.fit_seconds,
        }
        if not self.optimum:
            return summary
        if hp.loss == "mae" and len(x) > self.exact_max_rows:
            summary["optimum_note"] = (
                f"exact optimum skipped: {len(x)} training rows is more than --report.exact_max_rows "
                f"{self.exact_max_rows} for the MAE linear program"
            )
            return summary
        x64, y64 = x.double().cpu().numpy(), y.double().cpu().numpy()

        def to_original(w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
            w_o, b_o = data.to_original_units(
                torch.from_numpy(np.asarray(w)), torch.tensor(float(b), dtype=torch.float64)
            )
            return w_o.numpy(), float(b_o)

        best = exact_fit(x64, y64, hp.loss, hp.huber_delta)
        w_opt, b_opt = to_original(best.w, best.b)
        summary["optimum"] = {"w": w_opt.tolist(), "b": b_opt, "loss": best.loss, "method": best.method}
        summary["loss_gap"] = train_loss / best.loss - 1 if best.loss > 0 else None
        resamples = self.bootstrap if self.bootstrap is not None else (100 if len(x) <= 5000 else 0)
        if resamples:
            low, high = bootstrap_intervals(
                x64, y64, hp.loss, hp.huber_delta, resamples, data.hparams.seed, to_original
            )
            summary["intervals"] = {
                "w": [[lo, hi] for lo, hi in zip(low[:-1].tolist(), high[:-1].tolist(), strict=True)],
                "b": [low[-1].item(), high[-1].item()],
                "method": f"percentile bootstrap of the exact optimum, {resamples} resamples of the training rows",
            }
        return summary


class PredictionWriter(BasePredictionWriter):
    """``predict`` writes ``predictions.csv`` in the run's directory: the input rows plus a prediction column."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer: L.Trainer, pl_module, predictions: list, batch_indices) -> None:
        log_dir = trainer.log_dir  # collective under DDP
        if trainer.world_size > 1:
            raise UsageError("predict runs in one process: set --trainer.devices 1")
        data = trainer.datamodule
        table = data.predict_table()
        values = data.to_original_target(torch.cat(predictions).double().cpu()).tolist()
        column = f"{data.hparams.target}_prediction" if data.hparams.target else "prediction"
        path = Path(log_dir) / "predictions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow([*table.header, column])
            writer.writerows([*row, f"{value:.9g}"] for row, value in zip(table.rows, values, strict=True))
        print(f"{len(values)} predictions written to {path}")


class _ThrottledTqdm(Tqdm):
    """A tqdm bar that redraws at most every ``interval`` seconds, whoever asks (closing always draws)."""

    interval = 0.5
    _drawn_at = float("-inf")

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if now - self._drawn_at >= self.interval:
            self._drawn_at = now
            super().refresh(*args, **kwargs)


class ThrottledProgressBar(TQDMProgressBar):
    """Lightning's TQDM progress bar, redrawn at most every ``interval`` seconds.

    Lightning redraws the training bar after every ``training_step`` call and two or three times an epoch; a
    redraw costs ~0.3-0.5 ms here, more than a call's arithmetic at batch 16, and the tutorial's 50 epochs
    take half a second. A person watching sees no difference.

    Args:
        interval: seconds between redraws.
    """

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__()
        self.interval = interval

    def init_train_tqdm(self) -> Tqdm:
        bar = _ThrottledTqdm(
            desc=self.train_description,
            position=(2 * self.process_position),
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )
        bar.interval = self.interval
        return bar


def with_progress_bar(trainer_config: dict) -> list[L.Callback]:
    """The trainer's callbacks, plus a ThrottledProgressBar unless the bar is off or one is already there."""
    callbacks = list(trainer_config.get("callbacks") or [])
    if trainer_config.get("enable_progress_bar") is not False and not any(
        isinstance(c, ProgressBar) for c in callbacks
    ):
        callbacks.append(ThrottledProgressBar())
    return callbacks
