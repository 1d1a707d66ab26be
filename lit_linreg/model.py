"""Model: Y = X·w + b with exactly two parameters, fitted by manual-optimization SGD (MAE by default)."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.aggregation import MeanMetric

from lit_linreg.data import Batch, Steps, split_steps
from lit_linreg.errors import UsageError
from lit_linreg.optim import SGD, scheduled_lr

Loss = Literal["mae", "mse", "huber"]


def elementwise_loss(residual: Tensor, loss: Loss, huber_delta: float = 1.0) -> Tensor:
    """|r| (mae), r² (mse) or Huber's r²/2 inside ±delta and delta·(|r| - delta/2) outside."""
    if loss == "mae":
        return residual.abs()
    if loss == "mse":
        return residual.square()
    return F.huber_loss(residual, torch.zeros_like(residual), reduction="none", delta=huber_delta)


class LinearRegression(L.LightningModule):
    """Y = X·w + b, fitted by minibatch SGD on a loss over the residuals r = X·w + b - Y.

    Args:
        n_features: number of weights; the CLI takes it from the data.
        lr: SGD learning rate: every step moves each parameter by -lr times its gradient.
        lr_schedule: ``constant`` (the tutorial's) or ``linear``: lr decays linearly to zero over the run,
            which lets SGD settle at the optimum instead of jittering around it at the scale of lr.
        loss: ``mae`` mean |r| (the tutorial's), ``mse`` mean r², or ``huber`` (r²/2 near 0, linear beyond).
        huber_delta: where Huber's loss turns from quadratic to linear.
        init_w_std: every weight starts as a draw from N(0, init_w_std), as in the tutorial.
        init_b: the bias starts at this value.
    """

    def __init__(
        self,
        n_features: int = 4,
        lr: float = 0.01,
        lr_schedule: Literal["constant", "linear"] = "constant",
        loss: Loss = "mae",
        huber_delta: float = 1.0,
        init_w_std: float = 0.1,
        init_b: float = 0.01,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise UsageError(f"--model.lr must be > 0, got {lr}")
        if loss not in ("mae", "mse", "huber"):
            raise UsageError(f"--model.loss must be mae, mse or huber, got {loss!r}")
        if lr_schedule not in ("constant", "linear"):
            raise UsageError(f"--model.lr_schedule must be constant or linear, got {lr_schedule!r}")
        if not huber_delta > 0:
            raise UsageError(f"--model.huber_delta must be > 0, got {huber_delta}")
        if n_features < 1:
            raise UsageError(f"--model.n_features must be >= 1, got {n_features}")
        if not init_w_std >= 0:
            raise UsageError(f"--model.init_w_std must be >= 0, got {init_w_std}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.w = nn.Parameter(init_w_std * torch.randn(n_features))
        self.b = nn.Parameter(torch.tensor(float(init_b)))
        self.train_loss = MeanMetric()
        self.train_loss.persistent(True)  # checkpointed, so an epoch resumed mid-way logs the same mean loss
        metrics = MetricCollection({"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "r2": R2Score()})
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.feature_names = [f"x{i + 1}" for i in range(n_features)]
        self.true_w: Tensor | None = None
        self.total_steps = 0
        self._last_epoch_loss: float | None = None
        self._planted_logged = False

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.w + self.b

    def loss(self, x: Tensor, y: Tensor, global_size: int | None = None) -> Tensor:
        """The mean loss of the global batch that ``x`` is this process's share of (of ``x`` alone by default).

        Each rank divides its sum by the global batch size (times the world size, which DDP's gradient
        averaging divides back out), so the averaged gradient is the single-process one even when the ranks
        hold different numbers of rows.
        """
        losses = elementwise_loss(self(x) - y, self.hparams.loss, self.hparams.huber_delta)
        if global_size is None:
            return losses.mean()
        return losses.sum() * (self.trainer.world_size / global_size)

    def configure_optimizers(self) -> SGD:
        return SGD(self.parameters(), lr=self.hparams.lr)

    def on_fit_start(self) -> None:
        # Names and planted weights, when the data knows them, label the logs and the final report.
        data = self.trainer.datamodule
        self.feature_names = list(getattr(data, "feature_names", self.feature_names))
        true_w = getattr(data, "true_w", None)
        self.true_w = None if true_w is None else torch.tensor(true_w, device=self.device)
        self.total_steps = self._total_steps(getattr(data, "steps_per_epoch", None))

    def _total_steps(self, steps_per_epoch: int | None) -> int:
        """How many SGD steps the run will make (for the linear schedule); 0 when unbounded."""
        trainer = self.trainer
        limits = [trainer.max_steps] if trainer.max_steps > 0 else []
        if steps_per_epoch is not None and trainer.max_epochs not in (None, -1):
            limits.append(trainer.max_epochs * steps_per_epoch)
        if not limits and self.hparams.lr_schedule == "linear":
            raise UsageError(
                "--model.lr_schedule linear needs a known run length: set --trainer.max_epochs or max_steps"
            )
        return min(limits, default=0)

    def training_step(self, steps: Steps, batch_idx: int) -> None:
        """One SGD step per batch in ``steps`` (``--data.steps_per_call`` of them), each counted by Lightning."""
        opt = self.optimizers()
        max_steps = self.trainer.max_steps
        losses = []
        for batch in split_steps(steps):
            if 0 <= max_steps <= self.trainer.global_step:  # stop exactly at max_steps, even mid-call
                break
            lr = scheduled_lr(self.hparams.lr, self.hparams.lr_schedule, self.global_step, self.total_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad()
            loss = self.loss(*batch)
            self.manual_backward(loss)
            opt.step()
            losses.append(loss.detach())
        if losses:
            losses = torch.stack(losses)
            self._stop_if_diverged(losses)
            self.train_loss.update(losses)

    def _stop_if_diverged(self, losses: Tensor) -> None:
        # Once per call, before any checkpoint of this step is written, so the last checkpoint stays finite.
        if torch.isfinite(losses).all() and torch.isfinite(self.w).all() and torch.isfinite(self.b):
            return
        raise UsageError(
            f"training diverged at step {self.global_step}: the loss or the weights are no longer finite "
            f"(last loss {losses[-1].item():.3g}); try a smaller --model.lr than {self.hparams.lr:g}"
        )

    def on_train_epoch_end(self) -> None:
        # Once per epoch, and one self.log call only: each costs several times an SGD step at this size.
        loss = self.train_loss.compute()  # synced across ranks by torchmetrics
        self.train_loss.reset()
        self.log("train/loss", loss, prog_bar=True, sync_dist=True)  # equal on all ranks already
        self._last_epoch_loss = loss.item()
        if self.logger is None:
            return
        # The rest goes straight to the logger (rank 0 only): it is read in TensorBoard, not by callbacks.
        scalars = {"weights/bias": self.b.item()}
        scalars.update({f"weights/{name}": w for name, w in zip(self.feature_names, self.w.tolist(), strict=True)})
        if self.true_w is not None:
            scalars["train/w_distance"] = torch.linalg.vector_norm(self.w.detach() - self.true_w).item()
            if not self._planted_logged:  # a constant: its first and last points draw the whole line
                scalars.update(self._planted_scalars())
                self._planted_logged = True
        self.logger.log_metrics(scalars, step=self.global_step)

    def on_train_end(self) -> None:
        if self.logger is None:
            return
        final = {"hp_metric": self._last_epoch_loss} if self._last_epoch_loss is not None else {}
        if self.true_w is not None:
            final.update(self._planted_scalars())
        self.logger.log_metrics(final, step=self.global_step)

    def _planted_scalars(self) -> dict[str, float]:
        """The planted weights, drawn by the custom-scalars layout beside each weight's trajectory."""
        planted = {f"planted/{n}": w for n, w in zip(self.feature_names, self.true_w.tolist(), strict=True)}
        planted["planted/bias"] = self.trainer.datamodule.true_b
        return planted

    def on_train_start(self) -> None:
        # TensorBoard's CUSTOM SCALARS tab: one chart per weight, its trajectory beside its planted value.
        if isinstance(self.logger, TensorBoardLogger):
            charts = {
                name: ["Multiline", [f"weights/{name}", f"planted/{name}"]] for name in [*self.feature_names, "bias"]
            }
            self.logger.experiment.add_custom_scalars({"weights vs planted": charts})

    def _in_original_units(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Prediction and target of a batch in the data's own units (undoing ``standardize``), for metrics."""
        x, y, _ = batch
        data = self.trainer.datamodule
        if data is None or not hasattr(data, "to_original_target"):
            return self(x), y
        return data.to_original_target(self(x)), data.to_original_target(y)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.val_metrics.update(*self._in_original_units(batch))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.test_metrics.update(*self._in_original_units(batch))

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self(batch[0])
