"""RunSummary: the run's report, to TensorBoard as it goes, then the regression analysis beside what SGD learned."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lit_linreg.callbacks import tensorboard
from lit_linreg.callbacks.checkpoint import LastCheckpoint
from lit_linreg.errors import UsageError
from lit_linreg.losses import elementwise
from lit_linreg.model import LinearRegression
from lit_linreg.report import SgdResult, build_summary, format_lines, format_table, shown_path
from lit_linreg.stats.analysis import TooBig, analyse
from lit_linreg.stats.moments import row_chunks

DEFAULT_BOOTSTRAP = 1000
# Fewer resamples leave a 95% percentile interval's tails to one or two draws.
MIN_BOOTSTRAP = 100
# Resamples times rows: past this the bootstrap is capped (with a note), so that it stays a matter of minutes.
BOOTSTRAP_ROW_BUDGET = 20_000_000


class RunSummary(L.Callback):
    """The run's report: to TensorBoard as it goes, then the table, summary.json and report.png at the end of fit.

    TensorBoard's scalars are written by ``callbacks.tensorboard``'s functions, called from here (one callback
    rather than two: Lightning calls every callback at every hook of every step, ~6 µs a step each here); the
    table, ``summary.json`` and ``report.png`` go to the run's directory.

    The analysis is made in float64 on the training rows with the same loss: the exact optimum, its standard
    errors, p-values and 95% intervals, R² or pseudo-R², the condition number and the column checks; and the
    verdict on SGD, its distance from the optimum in standard errors. ``fit_seconds`` is the wall time of the
    fit loop alone (``on_train_start`` to ``on_train_end``), ``analysis_seconds`` that of the analysis.

    Args:
        optimum: solve for the exact optimum and its inference (the verdict needs them).
        covariance: ``robust`` (heteroscedasticity-robust sandwiches, the default) or ``classical``.
        bootstrap: percentile-bootstrap intervals instead of Student's t: ``true`` for 1,000 resamples, or a
            number of resamples; ``false`` or 0 for none. Capped, with a note, at 20 million resampled rows.
        plot: write ``report.png`` and log the same figure to TensorBoard.
    """

    def __init__(
        self,
        optimum: bool = True,
        covariance: Literal["robust", "classical"] = "robust",
        bootstrap: bool | int = False,
        plot: bool = True,
    ) -> None:
        if covariance not in ("robust", "classical"):
            raise UsageError(f"--report.covariance must be robust or classical, got {covariance!r}")
        resamples = DEFAULT_BOOTSTRAP if bootstrap is True else int(bootstrap)
        if resamples < 0:
            raise UsageError(f"--report.bootstrap must be true, false or a number of resamples >= 0, got {bootstrap}")
        if 0 < resamples < MIN_BOOTSTRAP:
            raise UsageError(
                f"--report.bootstrap {resamples} is too few resamples for a percentile interval (its 2.5% tails need "
                f"at least {MIN_BOOTSTRAP}; 1000 is usual)"
            )
        self.optimum, self.covariance, self.bootstrap, self.plot = optimum, covariance, resamples, plot
        self._started = 0.0
        self.fit_seconds = 0.0
        self.loss_history: list[float] = []  # one value per epoch; checkpointed, so it survives a resume
        self.summary: dict | None = None

    def state_dict(self) -> dict:
        return {"loss_history": list(self.loss_history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loss_history = list(state_dict["loss_history"])

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tensorboard.log_settings(trainer, pl_module)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        tensorboard.log_layout(trainer, pl_module)
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "train/loss" in trainer.callback_metrics:
            self.loss_history.append(trainer.callback_metrics["train/loss"].item())
        tensorboard.log_epoch(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds = time.perf_counter() - self._started
        tensorboard.log_end(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: LinearRegression) -> None:
        log_dir = trainer.log_dir  # a collective call under DDP: every rank makes it
        if not trainer.is_global_zero or log_dir is None:
            return
        data = trainer.datamodule
        self.summary = summary = self.summarize(trainer, pl_module)
        path = Path(log_dir) / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(format_table(summary))
        for line in format_lines(summary, data.n_train):
            print(line)
        if self.plot:
            from lit_linreg.figure import report_figure  # matplotlib costs ~0.5 s to import: only when used

            figure = report_figure(summary, self.loss_history)
            figure.savefig(Path(log_dir) / "report.png", dpi=110)
            if isinstance(trainer.logger, TensorBoardLogger):
                trainer.logger.experiment.add_figure("report", figure, trainer.global_step)
        done = f"{summary['global_step']} steps in {summary['fit_seconds']:.2f} s"
        if summary["interrupted"]:
            config, checkpoint = Path(log_dir) / "config.yaml", Path(log_dir) / "checkpoints" / "last.ckpt"
            # The interpreter and the program this run was started with (`python` may not be the venv's).
            program = [shown_path(sys.executable), shown_path(sys.argv[0])]
            resume = shlex.join(
                [*program, "fit", "--config", shown_path(config), "--ckpt_path", shown_path(checkpoint)]
            )
            print(f"interrupted at step {summary['global_step']}; resume with: {resume}")
        print(f"{done}; logs and summary.json in {shown_path(log_dir)}")

    def summarize(self, trainer: L.Trainer, model: LinearRegression) -> dict:
        data = trainer.datamodule
        x, y = data.train_rows()
        statistics = data.training_statistics()
        w, b = model.coefficients()
        hp = model.hparams
        train_loss = _training_loss(x, y, w, b, model)
        analysis, optimum_loss, note = None, None, None
        notes = list(data.notes)
        started = time.perf_counter()
        if self.optimum:
            resamples = self._resamples(len(x), notes)
            # Huber's delta is in units of the target as trained; the analysis works in standard deviations.
            y_std = statistics.moments.y_std or 1.0
            delta = hp.huber_delta * float(model.y_scale) / y_std
            try:
                analysis = analyse(
                    x, y, model.feature_names, hp.loss, delta, self.covariance, resamples, data.hparams.seed,
                    moments=statistics.moments, materialize=not data.memory_mapped,
                )  # fmt: skip
            except TooBig as skipped:
                note = str(skipped)
            else:
                optimum = torch.tensor([c.estimate for c in analysis.weights], dtype=torch.float64)
                optimum_loss = _training_loss(x, y, optimum, analysis.bias.estimate, model)
        else:
            note = "exact optimum and inference skipped (--report.optimum false): no convergence verdict"
        analysis_seconds = time.perf_counter() - started
        truth = None if data.true_w is None else (data.true_w, data.true_b)
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
        references = data.columns.references if data.columns is not None else {}
        if references:
            levels = ", ".join(f"{column}={level}" for column, level in references.items())
            notes.append(f"reference levels: {levels} (each indicator's weight is its difference from it)")
        run = {
            "reference_levels": references,
            "epochs": trainer.current_epoch,
            "global_step": trainer.global_step,
            "fit_seconds": self.fit_seconds,
            "analysis_seconds": analysis_seconds,
            "interrupted": bool(checkpoint and checkpoint.interrupted),
            "plan": {
                "batch_size": data.batch_size,
                "steps_per_epoch": data.steps_per_epoch,
                "passes_per_epoch": data.passes_per_epoch,
                "lr": model.lr,
                "lr_schedule": hp.lr_schedule,
                "average_tail": hp.average_tail,
                "standardize": hp.standardize,
                "precondition": hp.precondition,
            },
        }
        sgd = SgdResult(w.tolist(), float(b), train_loss)
        return build_summary(
            names=model.feature_names,
            target=data.target,
            column_std=statistics.moments.x_std.tolist(),
            sgd=sgd,
            loss=hp.loss,
            standardized=hp.standardize,
            analysis=analysis,
            optimum_loss=optimum_loss,
            optimum_note=note,
            truth=truth,
            run=run,
            notes=notes,
        )

    def _resamples(self, rows: int, notes: list[str]) -> int:
        if not self.bootstrap:
            return 0
        most = BOOTSTRAP_ROW_BUDGET // max(rows, 1)
        if self.bootstrap <= most:
            return self.bootstrap
        if most < MIN_BOOTSTRAP:
            notes.append(
                f"bootstrap skipped: {rows} rows is too many for even {MIN_BOOTSTRAP} resamples; intervals use "
                "Student's t"
            )
            return 0
        notes.append(f"bootstrap capped at {most} resamples (asked: {self.bootstrap}) for {rows} rows")
        return most


def _training_loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: float, model: LinearRegression) -> float:
    """The mean loss over the rows in training units (as SGD measures it), in float64, for weights in table units."""
    hp = model.hparams
    scale = float(model.y_scale)
    total = 0.0
    for xs, ys in row_chunks(x, y):
        residual = (xs @ w + b - ys) / scale
        total += float(elementwise(residual, hp.loss, hp.huber_delta).sum())
    return total / max(len(x), 1)
