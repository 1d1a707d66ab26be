"""``lit_linreg.fit`` and ``lit_linreg.load``: the CLI's fit from Python, returning its ``Regression``.

``fit`` builds what ``train.py fit --config configs/csv.yaml`` builds — the same data module, ``LinearRegression``,
callbacks and ``Trainer`` settings, seeded the same way — and runs ``Trainer.fit``; with the same settings it gives
the same numbers. It is quiet (no banner, no progress bar unless asked, no warnings), leaves the caller's random
generators as they were, and writes no run unless given a ``root_dir``: then the run's directory, checkpoint,
``summary.json`` and ``report.png``, as the CLI does (``memory_map=True`` writes its cache beside the table).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from lit_linreg.errors import UsageError
from lit_linreg.regression import Regression

# What fit() is given for the settings it leaves to the data, as configs/csv.yaml gives them to the CLI.
TABLE_DEFAULTS = {
    "lr": None,
    "lr_schedule": "exponential",
    "average_tail": 0.25,
    "standardize": True,
    "precondition": True,
    "batch_size": None,
    "passes_per_epoch": None,
    "max_epochs": None,
}


def fit(
    data: Any,
    target: str | None = None,
    *,
    features: list[str] | str | None = None,
    categorical: list[str] | str | dict[str, list[str]] | None = None,
    missing: Literal["error", "drop"] = "error",
    delimiter: str | None = None,
    encoding: str = "utf-8",
    memory_map: bool = False,
    loss: Literal["mse", "mae", "huber", "quantile"] = "mse",
    huber_k: float = 1.345,
    quantile: float = 0.5,
    lr: float | None = TABLE_DEFAULTS["lr"],
    lr_schedule: Literal["constant", "linear", "exponential"] = TABLE_DEFAULTS["lr_schedule"],
    average_tail: float = TABLE_DEFAULTS["average_tail"],
    standardize: bool = TABLE_DEFAULTS["standardize"],
    precondition: bool = TABLE_DEFAULTS["precondition"],
    init_w_std: float = 0.1,
    init_b: float = 0.01,
    batch_size: int | None = TABLE_DEFAULTS["batch_size"],
    passes_per_epoch: int | None = TABLE_DEFAULTS["passes_per_epoch"],
    val_fraction: float = 0.0,
    shuffle_block_rows: int = 1,
    seed: int = 42,
    max_epochs: int | None = TABLE_DEFAULTS["max_epochs"],
    max_steps: int = -1,
    optimum: bool = True,
    covariance: Literal["robust", "classical"] = "robust",
    bootstrap: bool | int = False,
    alpha: float = 0.05,
    cluster: str | None = None,
    weights: str | None = None,
    progress: bool = False,
    root_dir: str | Path | None = None,
    plot: bool = True,
    accelerator: str = "cpu",
    devices: int | str = 1,
    callbacks: list | None = None,
) -> Regression:
    """Fits ``target`` from the other columns of ``data`` by SGD, and the exact optimum with its inference.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, a CSV/Parquet/Arrow file's path, or ``(X, y)``
            arrays (X's columns are named x1..xd unless X is a DataFrame; y's name, else ``y``, is the target).
        target: the column to predict (not needed for ``(X, y)``).
        features ... seed, weights: as ``--data.*`` and ``--model.*`` of ``train.py fit`` (``train.py fit --help``;
            ``weights``: a column of positive case weights);
            the defaults are those ``configs/csv.yaml`` gives a table: settings chosen from the data.
        max_epochs, max_steps: the run's length; ``None`` lets the plan choose (about 2,000 steps).
        optimum, covariance, bootstrap, alpha, cluster: as ``--report.*``: the exact optimum and its inference
            (``cluster``: a column of ``data`` grouping the rows, for cluster-robust least-squares errors).
        progress: show a progress bar.
        root_dir: write the run as the CLI does, in ``root_dir/lightning_logs/version_N`` (checkpoint,
            ``summary.json``, ``report.png`` when ``plot``, TensorBoard logs). ``None``: write nothing.
        accelerator, devices: as Lightning's ``Trainer``; one process on the CPU unless asked (a table small
            enough for a notebook fits fastest there; DDP needs the CLI).
        callbacks: more Lightning callbacks for the run.

    Returns:
        The ``Regression``: ``params``, ``bse``, ``pvalues``, ``conf_int()``, ``summary()``, ``predict()``...

    Raises:
        ValueError: a bad setting or bad input, in one line naming it (nothing is written).
    """
    from lit_linreg.inputs import as_arrow, features_and_target, is_path

    loading = {
        "batch_size": batch_size,
        "val_fraction": val_fraction,
        "shuffle_block_rows": shuffle_block_rows,
        "passes_per_epoch": passes_per_epoch,
        "seed": seed,
    }
    table_settings = {"features": features, "categorical": categorical, "missing": missing}
    with _plain_errors(), _quiet(), _own_randomness():
        import lightning as L
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from lit_linreg.callbacks import AtomicCheckpointIO, LastCheckpoint, RunSummary, TensorBoardReport
        from lit_linreg.callbacks.progress import progress_bar
        from lit_linreg.data import LinRegDataModule
        from lit_linreg.data.sources import InMemoryTable
        from lit_linreg.model import LinearRegression
        from lit_linreg.runs import discard_unfinished_run
        from lit_linreg.trainer import TRAINER_DEFAULTS, planned_trainer_arguments

        if isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise UsageError(f"seed must be an integer in [0, 2**32), got {seed}")
        summary = RunSummary(
            optimum=optimum, covariance=covariance, bootstrap=bootstrap, alpha=alpha, plot=plot, cluster=cluster
        )
        summary.writes_files = root_dir is not None
        L.seed_everything(seed, verbose=False)  # as the CLI: before the model draws its initial weights
        if is_path(data):
            if target is None:
                raise UsageError(f"{data}: name the column to predict with target=")
            datamodule = LinRegDataModule(
                path=str(data), target=target, delimiter=delimiter, encoding=encoding, memory_map=memory_map,
                cluster=cluster, weights=weights, **table_settings, **loading,
            )  # fmt: skip
        else:
            if isinstance(data, tuple) and len(data) == 2:
                for option, column in (("cluster", cluster), ("weights", weights)):
                    if column is not None:
                        raise UsageError(f"{option}={column!r} names a column of a table; (X, y) arrays have none")
                table, name, target = features_and_target(*data, target)
            else:
                table, name = as_arrow(data)
                if target is None:
                    raise UsageError(f"name the column of {name} to predict with target=")
            source = InMemoryTable.of(
                table, name, target, features, categorical, missing, cluster=cluster, weights=weights
            )
            datamodule = LinRegDataModule.of(source, **loading)
        model = LinearRegression(
            n_features=datamodule.n_features,
            feature_names=datamodule.feature_names,
            target=datamodule.target,
            loss=loss,
            huber_k=huber_k,
            quantile=quantile,
            lr=lr,
            lr_schedule=lr_schedule,
            average_tail=average_tail,
            standardize=standardize,
            precondition=precondition,
            init_w_std=init_w_std,
            init_b=init_b,
        )
        length = {"max_epochs": max_epochs, "max_steps": max_steps}
        planned = planned_trainer_arguments(datamodule, model, length)
        # Ctrl-C (a notebook's "interrupt") ends the run after the current step, as in the CLI; without a
        # root_dir nothing is saved. (Lightning's own handling would ignore every later Ctrl-C and exit.)
        stopper = LastCheckpoint()
        stopper.writes = root_dir is not None
        callbacks: list[L.Callback] = [summary, stopper, *(callbacks or [])]
        if progress:
            callbacks.append(progress_bar())
        claimed, logger = None, False
        if root_dir is not None:
            claimed, logger = _run_logger(Path(root_dir))
            callbacks.append(TensorBoardReport())
        try:
            trainer = L.Trainer(
                **{**TRAINER_DEFAULTS, **length, **planned},
                plugins=[AtomicCheckpointIO()],
                callbacks=callbacks,
                logger=logger,
                default_root_dir=None if root_dir is None else str(root_dir),
                enable_progress_bar=progress,
                accelerator=accelerator,
                devices=devices,
            )
            if trainer.world_size > 1:
                raise UsageError(
                    "lit_linreg.fit runs in one process: for DDP use train.py fit --config configs/ddp.yaml"
                )
            trainer.fit(model, datamodule=datamodule)
        except (UsageError, MisconfigurationException) as err:
            if claimed is not None:
                discard_unfinished_run(claimed)
            raise UsageError(str(err)) from None
    model.trainer = None  # the result keeps the model, not the trainer and the rows it holds
    return summary.result


def load(path: str | Path) -> Regression:
    """The ``Regression`` of a checkpoint: one written by ``Regression.save``, or a run's ``last.ckpt`` (its
    result is the ``summary.json`` beside it). Loaded with ``weights_only=True``: no code in the file runs."""
    import json

    from lit_linreg.callbacks.summary import PREDICT_SETTINGS
    from lit_linreg.model import LinearRegression
    from lit_linreg.runs import checkpoint_run_directory
    from lit_linreg.settings import read_checkpoint

    with _plain_errors():
        checkpoint = read_checkpoint(str(path))
        saved = checkpoint.get("regression")
        if saved is None:
            beside = checkpoint_run_directory(str(path)) / "summary.json"
            if not beside.is_file():
                raise UsageError(f"{path} holds no result and there is no {beside}: its run did not finish")
            saved = json.loads(beside.read_text())
        model = LinearRegression.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
        data = checkpoint.get("datamodule_hyper_parameters", {})
        settings = {k: data[k] for k in PREDICT_SETTINGS if k in data}
        return Regression.from_dict(saved, model=model, data_settings=settings)


def _run_logger(root: Path):
    """(the run directory, claimed atomically as the CLI claims its own, and a TensorBoard logger in it)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from lit_linreg.runs import claim_run_directory

    claimed = claim_run_directory(str(root))
    return claimed, TensorBoardLogger(save_dir=str(root), version=int(claimed.name.removeprefix("version_")))


@contextlib.contextmanager
def _plain_errors() -> Iterator[None]:
    """A UsageError as Python users name settings: ``lr must be > 0``, not ``--model.lr must be > 0``."""
    try:
        yield
    except UsageError as err:
        raise UsageError(re.sub(r"--(model|data|report|trainer|checkpoint)\.", "", str(err))) from None


@contextlib.contextmanager
def _own_randomness() -> Iterator[None]:
    """The fit seeds Python's, numpy's and torch's generators, as the CLI does; a notebook's own draws go on from
    where they were."""
    import os
    import random

    import numpy as np
    import torch

    states = random.getstate(), np.random.get_state(), os.environ.get("PL_GLOBAL_SEED")
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            if states[2] is None:
                os.environ.pop("PL_GLOBAL_SEED", None)
            else:
                os.environ["PL_GLOBAL_SEED"] = states[2]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No Lightning info lines (devices, tips) and no library warnings while fitting; restored after."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def save(result: Regression, path: str | Path) -> Path:
    """``Regression.save``: a Lightning checkpoint of the model, with the result beside it under ``regression``.

    ``train.py predict --ckpt_path`` reads it like a run's ``last.ckpt``: its data settings are the columns the
    model was fitted on (a table given in Python is not in it: ``test`` needs ``--data.path``). Plain types
    only, so it loads with ``weights_only=True``; written to a temporary file and renamed.
    """
    import lightning as L

    from lit_linreg.callbacks import AtomicCheckpointIO

    model = result._require_model("save")
    checkpoint = {
        "epoch": result.epochs,
        "global_step": result.global_step,
        "pytorch-lightning_version": L.__version__,
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "datamodule_hyper_parameters": dict(result.data_settings or {}),
        "regression": result.to_dict(),
    }
    model.on_save_checkpoint(checkpoint)
    path = Path(path)
    AtomicCheckpointIO().save_checkpoint(checkpoint, path)
    return path
