"""Reporting: the end-of-fit table, and ``summary.json`` beside the run's logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

from lit_linreg.model import LinearRegression


def format_table(names: list[str], learned: list[float], true: list[float] | None) -> str:
    """feature | true | learned | error, one row per weight plus the bias (last in every list)."""
    width = max(len(n) for n in [*names, "feature"])
    lines = [f"{'feature':<{width}}  {'true':>9}  {'learned':>9}  {'error':>9}"]
    for i, name in enumerate(names):
        if true is None:
            lines.append(f"{name:<{width}}  {'-':>9}  {learned[i]:>9.4f}  {'-':>9}")
        else:
            lines.append(f"{name:<{width}}  {true[i]:>9.4f}  {learned[i]:>9.4f}  {learned[i] - true[i]:>+9.4f}")
    return "\n".join(lines)


class RunSummary(L.Callback):
    """At the end of fit, prints the learned weights beside the true ones and writes ``summary.json``.

    ``fit_seconds`` is the wall time of the fit loop alone (from ``on_train_start`` to ``on_train_end``):
    no imports, no data generation, no final report.
    """

    def __init__(self) -> None:
        self._started = 0.0
        self.fit_seconds = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

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
        true = summary["true"]
        print(
            format_table(
                [*summary["feature_names"], "bias"],
                [*summary["learned"]["w"], summary["learned"]["b"]],
                None if true is None else [*true["w"], true["b"]],
            )
        )
        print(f"train loss (mean absolute error over the training set): {summary['train_loss']:.6f}")
        print(f"{summary['global_step']} steps in {summary['fit_seconds']:.2f} s; logs and summary.json in {log_dir}")

    def summarize(self, trainer: L.Trainer, model: LinearRegression) -> dict:
        data = trainer.datamodule
        x, y = data.train_data
        with torch.no_grad():
            train_loss = model.loss(x.to(model.device), y.to(model.device)).item()
        true_w = getattr(data, "true_w", None)
        return {
            "feature_names": model.feature_names,
            "learned": {"w": model.w.tolist(), "b": model.b.item()},
            "true": None if true_w is None else {"w": list(true_w), "b": data.true_b},
            "train_loss": train_loss,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "fit_seconds": self.fit_seconds,
        }


class ThrottledProgressBar(TQDMProgressBar):
    """Lightning's TQDM progress bar, redrawn at most every ``interval`` seconds (and at each epoch's end).

    A redraw costs ~0.3-0.5 ms here, several SGD steps at batch 16; drawing after every ``training_step``
    call would cost more than the run's arithmetic. A person watching sees no difference.

    Args:
        interval: seconds between redraws.
    """

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__()
        self.interval = interval
        self._drawn_at = float("-inf")  # the first call draws

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        now = time.monotonic()
        if batch_idx + 1 >= self.total_train_batches or now - self._drawn_at >= self.interval:
            self._drawn_at = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def with_progress_bar(trainer_config: dict) -> list[L.Callback]:
    """The trainer's callbacks, plus a ThrottledProgressBar unless the bar is off or one is already there."""
    callbacks = list(trainer_config.get("callbacks") or [])
    if trainer_config.get("enable_progress_bar") is not False and not any(
        isinstance(c, ProgressBar) for c in callbacks
    ):
        callbacks.append(ThrottledProgressBar())
    return callbacks
