"""Model: Y = X·w + b with exactly two parameters, fitted by manual-optimization SGD on the MAE."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score
from torchmetrics.aggregation import MeanMetric

from lit_linreg.data import Batch, Steps, split_steps
from lit_linreg.errors import UsageError
from lit_linreg.optim import SGD


class LinearRegression(L.LightningModule):
    """Y = X·w + b, fitted by minibatch SGD on the mean absolute error L = mean |X·w + b - Y|.

    Args:
        n_features: number of weights; the CLI takes it from the data.
        lr: SGD learning rate: every step moves each parameter by -lr times its gradient.
        init_w_std: every weight starts as a draw from N(0, init_w_std), as in the tutorial.
        init_b: the bias starts at this value.
    """

    def __init__(self, n_features: int = 4, lr: float = 0.01, init_w_std: float = 0.1, init_b: float = 0.01) -> None:
        super().__init__()
        if not lr > 0:
            raise UsageError(f"--model.lr must be > 0, got {lr}")
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

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.w + self.b

    def loss(self, x: Tensor, y: Tensor, global_size: int | None = None) -> Tensor:
        """Mean absolute error of the global batch that ``x`` is this process's share of.

        Each rank divides its sum by the global batch size (times the world size, which DDP's gradient
        averaging divides back out), so the averaged gradient is the single-process one even when the ranks
        hold different numbers of rows.
        """
        if global_size is None:
            return (self(x) - y).abs().mean()
        return (self(x) - y).abs().sum() * (self.trainer.world_size / global_size)

    def configure_optimizers(self) -> SGD:
        return SGD(self.parameters(), lr=self.hparams.lr)

    def on_fit_start(self) -> None:
        # Names and planted weights, when the data knows them, label the logs and the final report.
        data = self.trainer.datamodule
        self.feature_names = list(getattr(data, "feature_names", self.feature_names))
        true_w = getattr(data, "true_w", None)
        self.true_w = None if true_w is None else torch.tensor(true_w, device=self.device)

    def training_step(self, steps: Steps, batch_idx: int) -> None:
        """One SGD step per batch in ``steps`` (``--data.steps_per_call`` of them), each counted by Lightning."""
        opt = self.optimizers()
        max_steps = self.trainer.max_steps
        losses = []
        for batch in split_steps(steps):
            if 0 <= max_steps <= self.trainer.global_step:  # stop exactly at max_steps, even mid-call
                break
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
        if self.logger is None:
            return
        # The rest goes straight to the logger (rank 0 only): it is read in TensorBoard, not by callbacks.
        scalars = {"hp_metric": loss.item(), "weights/bias": self.b.item()}
        scalars.update({f"weights/{name}": w for name, w in zip(self.feature_names, self.w.tolist(), strict=True)})
        if self.true_w is not None:
            scalars["train/w_distance"] = torch.linalg.vector_norm(self.w.detach() - self.true_w).item()
        self.logger.log_metrics(scalars, step=self.global_step)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y, _ = batch
        self.val_metrics.update(self(x), y)

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        x, y, _ = batch
        self.test_metrics.update(self(x), y)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self(batch[0])
