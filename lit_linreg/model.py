"""Model: Y = X·w + b with exactly two parameters, fitted by manual-optimization SGD on one of the losses."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lit_linreg.data.rows import Batch
from lit_linreg.errors import UsageError
from lit_linreg.losses import LOSSES, LossName, loss_of
from lit_linreg.optim import SGD, Schedule, scheduled_lr
from lit_linreg.plan import Plan
from lit_linreg.stats.training import TrainingStatistics


class LinearRegression(L.LightningModule):
    """Y = X·w + b, fitted by minibatch SGD on a loss of the residuals r = X·w + b - Y.

    The checkpoint is the whole model: besides ``w`` and ``b`` it holds the column names and, as buffers, the
    standardization the weights were trained in, so ``LinearRegression.load_from_checkpoint(path)(x)`` predicts
    in the table's own units.

    Args:
        n_features: number of weights; the CLI takes it from the data.
        feature_names: one name per weight (from the data); ``null`` names them x1..xd.
        target: the name of what is predicted (from the data).
        loss: ``mse`` mean r² (least squares), ``mae`` mean |r| (the tutorial's: the median regression),
            ``huber`` (r²/2 near 0, linear beyond) or ``quantile`` (the pinball loss at ``quantile``).
            ``null``: ``mse`` when the rows are a table, as in statsmodels, R and scikit-learn; ``mae`` for the
            tutorial's planted people (the CLI and ``lit_linreg.fit`` decide; alone, ``mae``).
        huber_k: where Huber's loss turns from quadratic to linear, in units of the residuals' robust scale
            (their MAD, estimated with the exact fit before training, as statsmodels' RLM and R's rlm do):
            1.345 gives 95% efficiency under normal errors. Independent of ``standardize``.
        quantile: the quantile τ in (0, 1) that ``loss: quantile`` predicts (0.9: the 90th percentile of the
            target given the columns); mae is the 0.5 quantile.
        lr: SGD learning rate: every step moves each parameter by -lr times its (preconditioned) gradient.
            ``null`` takes a Newton-sized step for the loss (needs ``standardize``).
        lr_schedule: ``constant`` (the tutorial's), ``linear`` (to zero over the run) or ``exponential`` (to
            lr · 1e-4 over the run, by the same factor every step).
        average_tail: Polyak–Ruppert tail averaging: average the weights over this last fraction of the run
            (from an epoch boundary); the averages are what the model reports, saves and predicts with.
            0 turns it off.
        standardize: train on columns and target scaled to mean 0 and standard deviation 1 (statistics of the
            training rows, kept in the checkpoint), so that one learning rate suits every table; weights are
            reported and predictions made in the original units.
        precondition: multiply each gradient by the inverse correlation matrix of the columns (whitening): nearly
            collinear columns then converge as fast as independent ones.
        init_w_std: every weight starts as a draw from N(0, init_w_std), as in the tutorial.
        init_b: the bias starts at this value.
    """

    def __init__(
        self,
        n_features: int = 4,
        feature_names: list[str] | None = None,
        target: str | None = None,
        loss: LossName | None = None,
        huber_k: float = 1.345,
        quantile: float = 0.5,
        lr: float | None = 0.01,
        lr_schedule: Schedule = "constant",
        average_tail: float = 0.0,
        standardize: bool = False,
        precondition: bool = False,
        init_w_std: float = 0.1,
        init_b: float = 0.01,
    ) -> None:
        super().__init__()
        _check(n_features, feature_names, loss, huber_k, quantile, lr, lr_schedule, average_tail, init_w_std)
        if lr is None and not standardize:
            raise UsageError("--model.lr null (chosen for you) needs --model.standardize true")
        self.save_hyperparameters(logger=False)  # the TensorBoard callback logs them, with the real metric
        self.hparams.loss = loss or "mae"
        # What SGD minimises, in units of the target as trained (Huber's: at the scale the plan gives).
        self.objective = loss_of(self.hparams.loss, huber_k, quantile=quantile)
        self.automatic_optimization = False
        self.feature_names = list(feature_names or [f"x{i + 1}" for i in range(n_features)])
        self.w = nn.Parameter(init_w_std * torch.randn(n_features))
        self.b = nn.Parameter(torch.tensor(float(init_b)))
        # The standardization the weights live in (identity unless ``standardize``): part of the model.
        f64 = torch.float64
        self.register_buffer("x_mean", torch.zeros(n_features, dtype=f64))
        self.register_buffer("x_scale", torch.ones(n_features, dtype=f64))
        self.register_buffer("y_mean", torch.tensor(0.0, dtype=f64))
        self.register_buffer("y_scale", torch.tensor(1.0, dtype=f64))
        # Tail averages of w and b, and how many steps they hold (0: averaging has not started).
        self.register_buffer("w_average", torch.zeros(n_features))
        self.register_buffer("b_average", torch.tensor(0.0))
        self.register_buffer("averaged_steps", torch.tensor(0, dtype=torch.long))
        self.lr = lr
        self.plan: Plan | None = None  # given before training (lit_linreg.plan.plan_run)
        self.preconditioner: Tensor | None = None
        self.total_steps = 0
        self.average_from = 0
        self._epoch_loss = torch.tensor(0.0)
        self._epoch_steps = 0

    # ------------------------------------------------------------------------------------------------------------
    # What the model computes

    def coefficients(self) -> tuple[Tensor, Tensor]:
        """(w, b) in the table's own units, float64: the tail averages once averaging has started."""
        averaged = int(self.averaged_steps) > 0
        w = (self.w_average if averaged else self.w).detach().double()
        b = (self.b_average if averaged else self.b).detach().double()
        w_original = w * self.y_scale / self.x_scale
        return w_original, self.y_mean + self.y_scale * b - w_original @ self.x_mean

    def forward(self, x: Tensor) -> Tensor:
        """Predictions in the table's units (float64) from rows in the table's units."""
        w, b = self.coefficients()
        return x.to(w.dtype) @ w + b

    def loss(self, x: Tensor, y: Tensor, weights: Tensor | None = None, global_size: int | None = None) -> Tensor:
        """The mean loss, in training units, of the global batch that ``x`` is this process's share of; with
        case weights, each row's residual times the loss's ``row_scale`` of its weight.

        Each rank divides its sum by the global batch size (times the world size, which DDP's gradient averaging
        divides back out), so the averaged gradient is the single-process one whatever the ranks hold.
        """
        residual = self._trained_prediction(x) - self._trained_target(y)
        if weights is not None:
            residual = residual * self.objective.row_scale(weights).to(residual.dtype)
        losses = self.objective.elementwise(residual)
        if global_size is None:
            return losses.mean()
        return losses.sum() * (self.trainer.world_size / global_size)

    def _trained_prediction(self, x: Tensor) -> Tensor:
        """z·w + b for the rows x of the table, z their standardized values (x itself without ``standardize``)."""
        if not self.hparams.standardize:
            return x.to(self.w.dtype) @ self.w + self.b
        # ((x - mean) / scale)·w as x·(w / scale) - mean·(w / scale), in float64: a column of years keeps its
        # digits, and no standardized copy of the batch is made (at 3,000 x 2,000 that copy took 43 of a step's
        # 80 ms here).
        w = self.w.double() / self.x_scale
        return (x.double() @ w - self.x_mean @ w).to(self.w.dtype) + self.b

    def _trained_target(self, y: Tensor) -> Tensor:
        if self.hparams.standardize:
            y = (y.double() - self.y_mean) / self.y_scale
        return y.to(self.w.dtype)

    # ------------------------------------------------------------------------------------------------------------
    # Fitting

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.plan is None:  # trainer.fit(model, datamodule) without lit_linreg.plan_run
            from lit_linreg.plan import plan_run

            plan_run(self.trainer.datamodule, self)

    def follow(self, statistics: TrainingStatistics, plan: Plan) -> None:
        """Takes the run's plan (its learning rate) and from the training rows what SGD needs: scales, the
        preconditioner, the columns to hold at 0."""
        self.plan, self.lr = plan, plan.lr
        moments = statistics.moments
        if self.hparams.standardize:
            self.x_mean.copy_(moments.x_mean)
            self.x_scale.copy_(torch.where(moments.x_std > 0, moments.x_std, torch.ones_like(moments.x_std)))
            self.y_mean.fill_(moments.y_mean)
            self.y_scale.fill_(moments.y_std if moments.y_std > 0 else 1.0)
        if plan.huber_scale is not None:  # in the table's units; the target as trained is divided by y_scale
            self.objective = self.objective.at_scale(plan.huber_scale / float(self.y_scale))
        kept_mask = statistics.kept_mask()
        if self.hparams.precondition:
            self.preconditioner = statistics.whitening()
        elif not kept_mask.all():  # constant or aliased columns stay at 0, as the exact fit leaves them out
            self.preconditioner = torch.diag(kept_mask)
        with torch.no_grad():
            self.w[kept_mask == 0] = 0.0

    def configure_optimizers(self) -> SGD:
        preconditioner = None if self.preconditioner is None else self.preconditioner.to(self.w)
        return SGD([{"params": [self.w], "preconditioner": preconditioner}, {"params": [self.b]}], lr=self.lr)

    def on_train_start(self) -> None:
        # Lightning's public estimate of the run's optimizer steps: the length the schedules decay over.
        total = self.trainer.estimated_stepping_batches
        if total == float("inf") and (self.hparams.lr_schedule != "constant" or self.hparams.average_tail):
            raise UsageError(
                f"--model.lr_schedule {self.hparams.lr_schedule} and --model.average_tail need a known run "
                "length: set --trainer.max_epochs or --trainer.max_steps"
            )
        self.total_steps = int(min(total, 2**62))
        if self.hparams.average_tail:
            per_epoch = max(self.trainer.num_training_batches, 1)
            epochs = self.total_steps / per_epoch
            self.average_from = int(epochs * (1 - self.hparams.average_tail)) * per_epoch  # an epoch boundary
        self._epoch_loss = self._epoch_loss.to(self.device)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        opt = self.optimizers()
        if self.hparams.lr_schedule != "constant":
            lr = scheduled_lr(self.lr, self.hparams.lr_schedule, self.global_step, self.total_steps)
            for group in opt.param_groups:
                group["lr"] = lr
        opt.zero_grad()
        loss = self.loss(*batch)
        self.manual_backward(loss)
        opt.step()
        self._epoch_loss += loss.detach()  # a running sum: no metric object, no sync, no .item()
        self._epoch_steps += 1
        if self.hparams.average_tail and self.global_step > self.average_from:
            self._update_average()

    @torch.no_grad()
    def _update_average(self) -> None:
        self.averaged_steps += 1
        self.w_average += (self.w - self.w_average) / self.averaged_steps
        self.b_average += (self.b - self.b_average) / self.averaged_steps

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        # The epoch's loss is closed at its last step, so that the callbacks' epoch-end hooks (which Lightning
        # calls before this module's) see this epoch's value.
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._close_epoch(at_last_step=True)

    def on_train_epoch_end(self) -> None:
        if self._epoch_steps:  # an epoch cut short (max_steps, Ctrl-C)
            self._close_epoch(at_last_step=False)

    def _close_epoch(self, at_last_step: bool) -> None:
        """The mean of the epoch's global batch losses, the same on every rank: one self.log an epoch."""
        self.check_finite()
        loss = self.trainer.strategy.reduce(self._epoch_loss, reduce_op="mean") / self._epoch_steps
        self._epoch_loss, self._epoch_steps = torch.zeros_like(self._epoch_loss), 0
        # For the bar and the callbacks (RunSummary logs it beside the weights, at the same step). Reduced already,
        # so Lightning need not sync it (which costs ~6 ms a call here), except at an epoch end, where it insists.
        self.log("train/loss", loss, prog_bar=True, logger=False, sync_dist=not at_last_step)

    def check_finite(self) -> None:
        """Stops a diverged run in one line: called at every epoch end and before every save, so the last
        checkpoint stays finite. The epoch's running loss carries any non-finite step since the epoch began."""
        if not (torch.isfinite(self.w).all() and torch.isfinite(self.b) and torch.isfinite(self._epoch_loss)):
            raise UsageError(
                f"training diverged by step {self.global_step}: the loss or the weights are no longer finite; "
                f"try a smaller --model.lr than {self.lr:g}"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The epoch's running loss, so that an epoch resumed mid-way logs the same mean.
        checkpoint["epoch_loss"] = {"sum": float(self._epoch_loss), "steps": self._epoch_steps}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("epoch_loss", {"sum": 0.0, "steps": 0})
        self._epoch_loss = torch.tensor(state["sum"], dtype=self._epoch_loss.dtype)
        self._epoch_steps = state["steps"]

    # ------------------------------------------------------------------------------------------------------------
    # Evaluating: sums of the residuals in the table's units, so any batching and any number of ranks agree.

    def on_validation_epoch_start(self) -> None:
        self._sums = torch.zeros(5, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x, y, _, _ = batch
        r = self(x) - y.double()
        shifted = y.double() - self.y_mean  # centred on the training mean: R²'s sums keep their digits
        self._sums += torch.stack(
            [
                torch.tensor(float(len(r)), device=r.device),
                r.abs().sum(),
                r.square().sum(),
                shifted.sum(),
                shifted.square().sum(),
            ]
        )

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        n, absolute, squares, total, total_squares = self.trainer.strategy.reduce(self._sums, reduce_op="sum")
        spread = total_squares - total.square() / n
        metrics = {"mae": absolute / n, "mse": squares / n, "r2": 1 - squares / spread, "rows": n}
        self.log_dict({f"{stage}/{k}": v.float() for k, v in metrics.items()}, batch_size=int(n))

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self(batch[0])


def _check(n_features, feature_names, loss, huber_k, quantile, lr, lr_schedule, average_tail, init_w_std) -> None:
    if n_features < 1:
        raise UsageError(f"--model.n_features must be >= 1, got {n_features}")
    if feature_names is not None and len(feature_names) != n_features:
        raise UsageError(f"--model.feature_names has {len(feature_names)} names for {n_features} weights")
    if loss is not None and loss not in LOSSES:
        raise UsageError(f"--model.loss must be mae, mse, huber or quantile, got {loss!r}")
    if not huber_k > 0:
        raise UsageError(f"--model.huber_k must be > 0, got {huber_k}")
    if not 0 < quantile < 1:
        raise UsageError(f"--model.quantile must be in (0, 1), got {quantile}")
    if quantile != 0.5 and loss != "quantile":
        raise UsageError(f"--model.quantile {quantile:g} needs --model.loss quantile (the loss is {loss or 'mae'})")
    if lr is not None and not lr > 0:
        raise UsageError(f"--model.lr must be > 0, got {lr}")
    if lr_schedule not in ("constant", "linear", "exponential"):
        raise UsageError(f"--model.lr_schedule must be constant, linear or exponential, got {lr_schedule!r}")
    if not 0 <= average_tail < 1:
        raise UsageError(f"--model.average_tail must be in [0, 1), got {average_tail}")
    if not init_w_std >= 0:
        raise UsageError(f"--model.init_w_std must be >= 0, got {init_w_std}")
