"""RunSummary: the end-of-fit analysis beside what SGD learned, as one ``Regression``, and the files it writes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lit_linreg.callbacks.checkpoint import LastCheckpoint
from lit_linreg.errors import UsageError
from lit_linreg.model import LinearRegression
from lit_linreg.regression import Regression
from lit_linreg.stats.analysis import TooBig, analyse
from lit_linreg.stats.moments import row_chunks

DEFAULT_BOOTSTRAP = 1000
# Fewer resamples leave a 95% percentile interval's tails to one or two draws.
MIN_BOOTSTRAP = 100
# Resamples times rows: past this the bootstrap is capped (with a note), so that it stays a matter of minutes.
BOOTSTRAP_ROW_BUDGET = 20_000_000
# The columns ``predict`` needs to turn new rows into the model's inputs, as the data module was given them.
PREDICT_SETTINGS = ("target", "features", "categorical", "missing", "delimiter", "encoding")


class RunSummary(L.Callback):
    """The run's result: at the end of fit, the regression analysis beside what SGD learned, as a ``Regression``
    (``result``), written as ``summary.json`` and ``report.png`` in the run's directory.

    The analysis is made in float64 on the training rows with the same loss: the exact optimum, its standard
    errors, p-values and (1 - alpha) intervals, R² or pseudo-R², the condition number and the column checks; and
    the verdict on SGD, its distance from the optimum in standard errors. ``fit_seconds`` is the wall time of the
    fit loop alone (``on_train_start`` to ``on_train_end``), ``analysis_seconds`` that of the analysis.

    Args:
        optimum: solve for the exact optimum and its inference (the verdict needs them).
        covariance: ``robust`` (heteroscedasticity-robust sandwiches, the default) or ``classical``. With
            ``robust``, least squares' intervals invert the wild restricted bootstrap test of HC2's t (up to 1e8
            multiply-adds of draws: about 1,000 rows with 10 parameters), Huber's on tables of at most 5 rows a
            parameter the same test with every draw refitted (up to 1.2e8 multiply-adds: 64 rows with 21
            parameters), and mae and quantile intervals below 1,001 rows the rank-score test (R's default; not for
            a memory-mapped table, an intercept alone, or with a bootstrap).
        bootstrap: percentile-bootstrap intervals instead of Student's t: ``true`` for 1,000 resamples, or a
            number of resamples; ``false`` or 0 for none. Capped, with a note, at 20 million resampled rows.
        alpha: every interval's level is 1 - alpha (0.05: 95%).
        plot: write ``report.png`` and log the same figure to TensorBoard.
        cluster: a column of the table whose values group the rows (a school, a firm, a patient): least squares'
            standard errors become cluster-robust (CR1, as statsmodels' ``cov_type="cluster"`` and R's
            ``sandwich::vcovCL``), with Student's t on (clusters - 1) degrees of freedom.
    """

    def __init__(
        self,
        optimum: bool = True,
        covariance: Literal["robust", "classical"] = "robust",
        bootstrap: bool | int = False,
        alpha: float = 0.05,
        plot: bool = True,
        cluster: str | None = None,
    ) -> None:
        if covariance not in ("robust", "classical"):
            raise UsageError(f"--report.covariance must be robust or classical, got {covariance!r}")
        if cluster is not None and covariance == "classical":
            raise UsageError(
                f"--report.cluster {cluster} is a robust covariance: leave out --report.covariance classical"
            )
        if cluster is not None and bootstrap:
            raise UsageError(f"--report.cluster {cluster}: a bootstrap of single rows would ignore the clusters")
        if cluster is not None and not optimum:
            raise UsageError(f"--report.cluster {cluster} is for the exact optimum's errors: --report.optimum is false")
        resamples = DEFAULT_BOOTSTRAP if bootstrap is True else int(bootstrap)
        if resamples < 0:
            raise UsageError(f"--report.bootstrap must be true, false or a number of resamples >= 0, got {bootstrap}")
        if 0 < resamples < MIN_BOOTSTRAP:
            raise UsageError(
                f"--report.bootstrap {resamples} is too few resamples for a percentile interval (its 2.5% tails need "
                f"at least {MIN_BOOTSTRAP}; 1000 is usual)"
            )
        if not 0 < alpha < 1:
            raise UsageError(f"--report.alpha must be in (0, 1), got {alpha}")
        self.optimum, self.covariance, self.bootstrap, self.alpha, self.plot = (
            optimum, covariance, resamples, alpha, plot
        )  # fmt: skip
        self.cluster = cluster
        self.writes_files = True  # summary.json and report.png in the run's directory (lit_linreg.fit: if asked)
        self._started = 0.0
        self.fit_seconds = 0.0
        self.loss_history: list[float] = []  # one value per epoch; checkpointed, so it survives a resume
        self.result: Regression | None = None
        self.log_dir: Path | None = None

    def state_dict(self) -> dict:
        return {"loss_history": list(self.loss_history)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loss_history = list(state_dict["loss_history"])

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        loss = pl_module.hparams.get("loss")
        if stage == "fit" and self.cluster is not None and loss != "mse":
            raise UsageError(
                f"--report.cluster {self.cluster}: cluster-robust standard errors are least squares' here (CR1, "
                f"--model.loss mse); the {loss} fit has none"
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if "train/loss" in trainer.callback_metrics:
            self.loss_history.append(trainer.callback_metrics["train/loss"].item())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_seconds = time.perf_counter() - self._started

    def on_fit_end(self, trainer: L.Trainer, pl_module: LinearRegression) -> None:
        log_dir = trainer.log_dir if self.writes_files else None  # a collective call under DDP: every rank makes it
        if not trainer.is_global_zero:
            return
        self.result = result = self.summarize(trainer, pl_module)
        if log_dir is None:
            return
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        if self.plot:
            from lit_linreg.figure import report_figure  # matplotlib costs ~0.5 s to import: only when used

            figure = report_figure(result, self.loss_history)
            figure.savefig(self.log_dir / "report.png", dpi=110)
            if isinstance(trainer.logger, TensorBoardLogger):
                trainer.logger.experiment.add_figure("report", figure, trainer.global_step)

    def summarize(self, trainer: L.Trainer, model: LinearRegression) -> Regression:
        data = trainer.datamodule
        # On the CPU, where Lightning has put the model back by fit's end (rows that fit on a GPU were moved there).
        x, y = (rows.cpu() for rows in data.train_rows())
        statistics = data.training_statistics()
        w, b = model.coefficients()
        hp = model.hparams
        # Case weights as given (the analysis) and at mean 1 (as SGD trained), on the CPU with the rows.
        weights, sgd_weights = (
            None if given is None else given.cpu() for given in (data.train_weights(), data.train_weights(True))
        )
        train_loss = _training_loss(x, y, w, b, model, sgd_weights)
        analysis, optimum_loss, note = None, None, None
        notes = list(data.notes)
        started = time.perf_counter()
        if self.optimum:
            resamples = self._resamples(len(x), notes)
            try:
                analysis = analyse(
                    x, y, model.feature_names, hp.loss, hp.huber_k, self.covariance, resamples, data.hparams.seed,
                    moments=statistics.moments, materialize=not data.memory_mapped, alpha=self.alpha,
                    quantile=hp.quantile, clusters=data.train_groups() if self.cluster else None, case_weights=weights,
                    progress=_print if trainer.progress_bar_callback is not None else None,
                )  # fmt: skip
            except TooBig as skipped:
                note = str(skipped)
            else:
                optimum = torch.tensor([c.estimate for c in analysis.weights], dtype=torch.float64)
                optimum_loss = _training_loss(x, y, optimum, analysis.bias.estimate, model, sgd_weights)
        else:
            note = "exact optimum and inference skipped (--report.optimum false): no convergence verdict"
        analysis_seconds = time.perf_counter() - started
        truth = None if data.true_w is None else [*data.true_w, data.true_b]
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, LastCheckpoint)), None)
        references = data.columns.references if data.columns is not None else {}
        if references:
            levels = ", ".join(f"{column}={level}" for column, level in references.items())
            notes.append(f"reference levels: {levels} (each indicator's weight is its difference from it)")
        return Regression.build(
            analysis=analysis,
            optimum_loss=optimum_loss,
            alpha=self.alpha,
            notes=notes,
            feature_names=list(model.feature_names),
            target=data.target,
            loss=hp.loss,
            quantile=hp.quantile if hp.loss == "quantile" else None,
            loss_scale="standardized" if hp.standardize else "original",
            learned=[*w.tolist(), float(b)],
            train_loss=train_loss,
            column_std=statistics.moments.x_std.tolist(),
            n_train=len(x),
            optimum_note=note,
            truth=truth,
            reference_levels=references,
            plan=model.plan.to_dict() if model.plan is not None else None,
            epochs=trainer.current_epoch,
            global_step=trainer.global_step,
            fit_seconds=self.fit_seconds,
            analysis_seconds=analysis_seconds,
            interrupted=bool(checkpoint and checkpoint.interrupted),
            model=model,
            data_settings={k: data.hparams[k] for k in PREDICT_SETTINGS if k in data.hparams},
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


def _print(line: str) -> None:
    """The analysis's progress, where the run shows its training's (the bar has closed by fit's end)."""
    print(line, flush=True)


def _training_loss(
    x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: float, model: LinearRegression, weights=None
) -> float:
    """The mean loss over the rows in training units (as SGD measures it, case weights included), in float64,
    for weights and bias in table units."""
    scale = float(model.y_scale)
    row_scale = None if weights is None else model.objective.row_scale(weights.double())
    total, start = 0.0, 0
    for xs, ys in row_chunks(x, y):
        residual = (xs @ w + b - ys) / scale
        if row_scale is not None:
            residual = residual * row_scale[start : start + len(xs)]
        total += float(model.objective.elementwise(residual).sum())
        start += len(xs)
    return total / max(len(x), 1)
