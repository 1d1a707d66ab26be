"""The run plan: how SGD walks the training rows (batch size, passes, epochs, learning rate), worked out once.

``make_plan`` turns the training rows' statistics and the settings into a ``Plan``; ``plan_run`` hands it to the
data module (batches) and the model (scales, preconditioner, learning rate) before the trainer is built, so that
the trainer's run length can follow it too. Every "null: chosen for you" setting of SGD's run is decided here
(the loss's own default, least squares for a table, is the CLI's and ``lit_linreg.fit``'s).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from lit_linreg.losses import loss_of
from lit_linreg.stats.training import TrainingStatistics

# The shortest epoch ``passes_per_epoch: null`` makes: the tutorial's (500 rows at batch 16).
MIN_STEPS_PER_EPOCH = 32
# The largest batch ``batch_size: null`` chooses.
MOST_ROWS_A_BATCH = 8192


@dataclass(frozen=True)
class Plan:
    """How a fit walks its training rows, every chosen value decided.

    Attributes:
        batch_size: rows per SGD step (the global batch).
        passes_per_epoch: shuffled passes over the training rows in one epoch.
        steps_per_epoch: SGD steps in one epoch.
        epochs: the run's length when neither ``max_epochs`` nor ``max_steps`` is given.
        lr: the learning rate of the first step.
        lr_schedule, average_tail, standardize, precondition: the model's settings, as the report names them.
        huber_scale: for Huber's loss, the residuals' MAD scale at the exact M-estimate (the table's units):
            SGD's threshold is huber_k times it, so that SGD and the analysis minimise the same loss.
    """

    batch_size: int
    passes_per_epoch: int
    steps_per_epoch: int
    epochs: int
    lr: float
    lr_schedule: str
    average_tail: float
    standardize: bool
    precondition: bool
    huber_scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_plan(
    statistics: TrainingStatistics,
    n_train: int,
    *,
    loss: str,
    batch_size: int | None,
    passes_per_epoch: int | None,
    lr: float | None,
    lr_schedule: str,
    average_tail: float,
    standardize: bool,
    precondition: bool,
    huber_scale: float | None = None,
    quantile: float = 0.5,
) -> Plan:
    """The plan for ``n_train`` training rows with these statistics; ``None`` settings are chosen."""
    batch_size = batch_size or auto_batch_size(n_train, statistics)
    batches_a_pass = math.ceil(n_train / batch_size)
    passes = passes_per_epoch or math.ceil(MIN_STEPS_PER_EPOCH / batches_a_pass)
    steps_per_epoch = passes * batches_a_pass
    if lr is None:  # a Newton-sized step, smaller for a batch lighter than the heaviest row's leverage
        lr = loss_of(loss, quantile=quantile).newton_lr
        if not precondition:
            lr /= statistics.largest_correlation_eigenvalue()
        lr *= min(1.0, batch_size / statistics.max_leverage)
    # About run_steps(...) steps: at least 8 epochs (every row seen several times), at most 200.
    steps = run_steps(loss, batch_size, whole_table=batches_a_pass == 1)
    epochs = min(200, max(8, math.ceil(steps / steps_per_epoch)))
    return Plan(
        batch_size, passes, steps_per_epoch, epochs, lr, lr_schedule, average_tail, standardize, precondition,
        huber_scale,
    )  # fmt: skip


def plan_run(data, model) -> Plan:
    """Loads the training rows (once), makes their plan and gives it to the data module and the model."""
    statistics = data.training_statistics()
    model_settings, data_settings = model.hparams, data.hparams
    huber_scale = None
    if model_settings.loss == "huber":  # the scale the analysis will find: a pilot of the same exact fit
        from lit_linreg.stats.analysis import huber_scale as pilot

        x, y = data.train_rows()
        huber_scale = pilot(
            x,
            y,
            statistics,
            model_settings.huber_k,
            materialize=not data.memory_mapped,
            case_weights=data.train_weights(mean_one=True),  # as SGD trains with them
        )
    plan = make_plan(
        statistics,
        data.n_train,
        loss=model_settings.loss,
        batch_size=data_settings.batch_size,
        passes_per_epoch=data_settings.passes_per_epoch,
        lr=model_settings.lr,
        lr_schedule=model_settings.lr_schedule,
        average_tail=model_settings.average_tail,
        standardize=model_settings.standardize,
        precondition=model_settings.precondition,
        huber_scale=huber_scale,
        quantile=model_settings.quantile,
    )
    data.plan = plan
    model.follow(statistics, plan)
    return plan


def run_steps(loss: str, batch_size: int, whole_table: bool = False) -> int:
    """The run length chosen when no epochs are given: about 2000 SGD steps, 4000 for mae (and any quantile) at
    batches under 1024 rows, 8000 when such a batch is the whole table.

    A sign gradient (mae) moves by a fixed amount whatever the distance left, and from a few rows it is noisy: at
    2000 steps two public tables with 32-row batches ended 0.6-0.75 standard errors from the optimum, at 4000
    none beyond 0.5 (benchmarks/public_tables.py). From 1024 rows a step, 2000 steps ended within 0.11 on every
    table measured (1M x 10 in benchmarks/bench_peers.py: 0.106), and 4000 would double the fit of a big table.
    A table that is one batch is tiny, so its steps are cheap, while its few rows leave SGD's last steps large
    against its standard errors: scotland (32 rows x 8) ended 0.53 Hendricks-Koenker standard errors away after
    4000 steps, 0.28 after the 6400 that 200 epochs allow.
    """
    if not loss_of(loss).sign_gradient or batch_size >= 1024:
        return 2000
    return 8000 if whole_table else 4000


def auto_batch_size(n_rows: int, statistics: TrainingStatistics, most: int = MOST_ROWS_A_BATCH) -> int:
    """About 64 steps an epoch, within [4 x parameters, 8192], at least the largest row leverage, then evened out.

    Each batch holds at least 4 rows per parameter and as many as the most leveraged row weighs once the columns
    are whitened, so that a Newton-sized step is stable; the batches of an epoch are then made equal, because a
    small last batch takes as big a step on much less information.
    """
    parameters = len(statistics.design.kept) + 1
    least = 2 ** math.ceil(math.log2(max(4 * parameters, statistics.max_leverage)))
    target = min(most, 2 ** round(math.log2(max(n_rows / 64, 1))))
    size = min(max(least, target), n_rows)
    return math.ceil(n_rows / math.ceil(n_rows / size))
