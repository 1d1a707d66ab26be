"""LinRegDataModule: the rows to fit (from a source), the held-out split, and the batches of every step."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, SequentialSampler

from lit_linreg.data.rows import Batch, BatchLoader, Rows, whole_batch
from lit_linreg.data.sampler import StepBatches
from lit_linreg.data.sources import (
    TUTORIAL_FEATURES,
    FittedColumns,
    InMemoryTable,
    MemoryMappedTable,
    PlantedPeople,
    Source,
)
from lit_linreg.data.store import PredictTable
from lit_linreg.data.table import Columns, CsvFormat
from lit_linreg.errors import UsageError
from lit_linreg.plan import Plan
from lit_linreg.stats.training import TrainingStatistics

PLANTED_ARGS = ["n_samples", "true_w", "true_b", "noise_std", "noise_mean", "feature_names"]
TABLE_ARGS = ["path", "target", "features", "categorical", "missing", "delimiter", "encoding", "memory_map"]
EVALUATION_BATCH = 65_536  # rows per evaluation batch: speed only, the metrics are sums


class LinRegDataModule(L.LightningDataModule):
    """The rows to fit: the tutorial's planted-weights people (the default), or a table from a file.

    Planted weights: X ~ N(0, 1), Y = X·w + b + ε, ε ~ N(noise_mean, noise_std). From a file: the ``target``
    column is Y and the ``features`` columns (default: all others) are X; text columns become indicator columns.

    Args:
        n_samples: number of people (rows) to generate.
        true_w: the planted weight of each feature.
        true_b: the planted bias. The tutorial's generator ignores it (use ``true_b: 0`` with ``noise_mean: 1``).
        noise_std: standard deviation of the noise added to Y.
        noise_mean: mean of that noise; 1.0 reproduces the tutorial, whose effective bias is this mean.
        feature_names: one name per planted weight; ``null`` names them x1..xd.
        path: fit this table instead of generated data: a CSV file (any of , ; tab | as delimiter), Parquet
            (.parquet) or Arrow/Feather (.feather, .arrow). The planted-data arguments are then ignored.
        target: the column to predict.
        features: the columns to predict it from (one name, or a list); ``null`` takes every column but the target.
        categorical: feature columns to treat as categories (text columns always are), or a mapping from each to
            its levels, the first being the reference; each becomes one indicator column per other level.
        missing: what to do with rows that have an empty cell in a used column: ``error`` (list them) or
            ``drop`` (leave them out and say how many).
        delimiter: the CSV delimiter; ``null`` detects it from the header line.
        encoding: the CSV's text encoding (``latin-1`` or ``cp1252`` for many spreadsheet exports).
        memory_map: train from a memory-mapped copy of the table (written once beside it) instead of memory:
            for tables larger than the memory you want to give them.
        predict_path: the file ``predict`` reads (the feature columns; the target column is optional).
        batch_size: rows per SGD step (the global batch, split across processes under DDP); ``null`` chooses
            from the table: about 64 steps an epoch, at least 4 rows per parameter and at least the largest
            leverage of a row, at most 8192, and batches of equal size.
        val_fraction: share of rows held out for ``validate`` and ``test``, in [0, 1).
        shuffle_block_rows: shuffle blocks of this many consecutive rows rather than single rows. At millions of
            rows a random row gather is limited by memory latency; blocks read memory in runs.
        passes_per_epoch: shuffled passes over the training rows in one epoch; ``null`` makes a small table's
            epoch several passes, at least 32 steps (Lightning's work at each epoch costs here what ~4 SGD steps
            do, so a 30-row table at one step an epoch spent most of its time between epochs).
        seed: fixes the data, the held-out split and every epoch's shuffle.
        cluster: a column whose values group the rows (set by ``--report.cluster``): read with the table for
            cluster-robust standard errors, never a feature.
        weights: a column of positive case weights, never a feature: least squares becomes weighted least
            squares (statsmodels' ``WLS``, R's ``lm(weights=)``), quantile regression weights each row's pinball
            loss (R's ``rq(weights=)``), Huber's weights the rows as inverse variances (R's ``rlm(weights=)``);
            SGD weights the rows the same way (scaled to mean 1). ``validate`` and ``test`` measure unweighted.
    """

    def __init__(
        self,
        n_samples: int = 500,
        true_w: list[float] = [8.1, 2.0, 2.0, 4.0],  # noqa: B006 (jsonargparse shows it in --help)
        true_b: float = 1.1,
        noise_std: float = 0.01,
        noise_mean: float = 0.0,
        feature_names: list[str] | None = TUTORIAL_FEATURES,  # noqa: B006
        path: str | None = None,
        target: str | None = None,
        features: list[str] | str | None = None,
        categorical: list[str] | str | dict[str, list[str]] | None = None,
        missing: Literal["error", "drop"] = "error",
        delimiter: str | None = None,
        encoding: str = "utf-8",
        memory_map: bool = False,
        predict_path: str | None = None,
        batch_size: int | None = 16,
        val_fraction: float = 0.0,
        shuffle_block_rows: int = 1,
        passes_per_epoch: int | None = 1,
        seed: int = 42,
        cluster: str | None = None,
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise UsageError(f"--data.batch_size must be >= 1, got {batch_size}")
        if shuffle_block_rows < 1:
            raise UsageError(f"--data.shuffle_block_rows must be >= 1, got {shuffle_block_rows}")
        if passes_per_epoch is not None and passes_per_epoch < 1:
            raise UsageError(f"--data.passes_per_epoch must be >= 1 or null, got {passes_per_epoch}")
        if not 0 <= val_fraction < 1:
            raise UsageError(f"--data.val_fraction must be in [0, 1), got {val_fraction}")
        if missing not in ("error", "drop"):
            raise UsageError(f"--data.missing must be error or drop, got {missing!r}")
        self.csv_format = CsvFormat(delimiter, encoding)
        planted = path is None and target is None
        self.save_hyperparameters(ignore=TABLE_ARGS if planted else PLANTED_ARGS, logger=False)
        for option, column in (("--report.cluster", cluster), ("--data.weights", weights)):
            if column is not None and (planted or memory_map):
                where = "--data.memory_map keeps the table on disk" if memory_map else "the planted data has no columns"
                raise UsageError(f"{option} {column} names a column of a table in memory: {where}")
        if planted:
            source = PlantedPeople(n_samples, true_w, true_b, noise_std, noise_mean, feature_names)
        elif path is None:
            if features is None or not isinstance(categorical, dict):
                raise UsageError(f"--data.target {target} needs --data.path, the table it is a column of")
            source = FittedColumns(Columns(target, list(features), {k: list(v) for k, v in categorical.items()}))
        elif memory_map:  # streamed into the memory-mapped cache, which remembers the columns it made
            source = MemoryMappedTable(path, target, features, categorical, missing, self.csv_format)
        else:
            source = InMemoryTable.read(path, target, features, categorical, missing, self.csv_format, cluster, weights)
        self._use(source)

    @classmethod
    def of(cls, source: Source, **settings: Any) -> LinRegDataModule:
        """The data module of a source built in Python (``lit_linreg.fit``'s table); ``settings`` are the
        loading ones (batch_size, val_fraction, seed...). The checkpoint records its columns, not its rows."""
        data = cls(**settings)
        for name in PLANTED_ARGS:
            data.hparams.pop(name, None)
        data.hparams.update(
            path=None,
            missing=getattr(source, "missing", "error"),
            memory_map=False,
            weights=getattr(source, "weights", None),
            cluster=getattr(source, "cluster", None),
        )
        data._use(source)
        return data

    def _use(self, source: Source) -> None:
        self.source = source
        self.feature_names, self.target, self.columns = source.feature_names, source.target, source.columns
        if self.columns is not None:  # the columns actually used: a model can be applied without the table
            self.hparams.update(
                target=self.columns.target,
                features=list(self.columns.features),
                categorical={k: list(v) for k, v in self.columns.categorical.items()},
            )
        self.true_w, self.true_b = source.truth or (None, None)
        self.notes: list[str] = []
        self.plan: Plan | None = None  # given by lit_linreg.plan.plan_run before training
        self._statistics: TrainingStatistics | None = None
        self._predict_table: PredictTable | None = None
        self._trained_on: str | None = None  # the table of the checkpoint this data was restored from
        self.x: Tensor | None = None
        self.y: Tensor | None = None
        self.groups: Tensor | None = None  # each row's cluster (--report.cluster), in the rows' order
        self.weights: Tensor | None = None  # each row's weight (--data.weights), as given
        self.n_rows = self.n_train = self.n_val = 0
        self._y_sum: float | None = None

    @property
    def memory_mapped(self) -> bool:
        """Whether the rows stay on disk (``memory_map``): then the end-of-fit analysis streams them too."""
        return self.source.memory_mapped

    @property
    def n_features(self) -> int:
        """How many weights the model needs; the CLI hands it to the model."""
        return len(self.feature_names)

    # ------------------------------------------------------------------------------------------------------------
    # Loading

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and (self.hparams.predict_path is not None or self.columns is not None):
            return  # predict reads its own file (predict_table): the training rows are not needed
        self._load()

    def _load(self) -> None:
        """The source's rows, once, and the held-out split."""
        if self.x is not None:
            return
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp.seed)  # the data, then the held-out split
        rows = self.source.rows(generator)
        x, y, groups, weights, self._statistics = rows.x, rows.y, rows.groups, rows.weights, rows.statistics
        self.notes.extend(rows.notes)
        self.n_rows = len(x)
        self.n_val = round(self.n_rows * hp.val_fraction)
        self.n_train = self.n_rows - self.n_val
        if self.n_train < 1:
            raise UsageError(f"--data.val_fraction {hp.val_fraction} leaves no training rows of {self.n_rows}")
        if self.n_val:
            if self.memory_mapped:
                raise UsageError(
                    "--data.memory_map keeps the table on disk in its own order and cannot hold rows out: use "
                    "--data.val_fraction 0 and test on another file with --data.path"
                )
            order = _held_out_last(len(x), self.n_val, generator)
            x, y = x[order], y[order]
            groups = None if groups is None else groups[order]
            weights = None if weights is None else weights[order]
        if weights is not None:
            self.notes.append(f"rows weighted by the column {self.hparams.get('weights')!r}")
        self.x, self.y, self.groups, self.weights = x, y, groups, weights

    def train_rows(self) -> tuple[Tensor, Tensor]:
        """The training rows (views, not copies)."""
        self._load()
        return self.x[: self.n_train], self.y[: self.n_train]

    def train_weights(self, mean_one: bool = False) -> Tensor | None:
        """The training rows' weights as given (None without ``weights``), or scaled to mean 1: what SGD trains
        with, so that its step sizes mean what they mean unweighted (only the weights' ratios move an optimum;
        their scale is the unit a new observation's variance is measured in, as in statsmodels' WLS)."""
        self._load()
        if self.weights is None:
            return None
        weights = self.weights[: self.n_train]
        return weights / weights.mean() if mean_one else weights

    def train_groups(self) -> Tensor | None:
        """The training rows' clusters, coded 0, 1, ..., G - 1 over the clusters they hold (None without
        ``--report.cluster``): a cluster with only held-out rows, or a category no row has, is not counted."""
        self._load()
        if self.groups is None:
            return None
        return torch.unique(self.groups[: self.n_train], return_inverse=True)[1]

    def held_out_rows(self) -> tuple[Tensor, Tensor]:
        self._load()
        return self.x[self.n_train :], self.y[self.n_train :]

    def training_statistics(self) -> TrainingStatistics:
        """Moments, column checks and largest leverage of the training rows, in float64 (one or two passes)."""
        if self._statistics is None:
            self._statistics = TrainingStatistics.of(*self.train_rows(), self.feature_names)
        return self._statistics

    # ------------------------------------------------------------------------------------------------------------
    # Loaders

    def train_dataloader(self) -> BatchLoader:
        """Batches as a function of the global step (see ``StepBatches``): resuming needs no loader state."""
        self._move_to_accelerator_once()
        trainer = self.trainer
        batches = StepBatches(
            self.n_train,
            self.plan.batch_size,
            self.hparams.seed,
            first_step=lambda: trainer.global_step,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            block_rows=self.hparams.shuffle_block_rows,
            passes=self.plan.passes_per_epoch,
        )
        return BatchLoader(Rows(*self.train_rows(), self.train_weights(mean_one=True)), batches)

    def val_dataloader(self) -> DataLoader:
        """The held-out rows; without any, the training rows (``describe_rows`` says which)."""
        return self._evaluation_loader(*(self.held_out_rows() if self.n_val else self.train_rows()))

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        """The rows of ``predict_path`` when given (target column optional), else every row of the data."""
        x = self.predict_table().x
        return self._evaluation_loader(x, torch.zeros(len(x), dtype=x.dtype))

    def describe_rows(self) -> str:
        """Which rows ``validate`` and ``test`` measure, in words."""
        source = self.source.name
        if self._trained_on not in (None, source):  # the checkpoint's model, measured on another table
            return f"all {self.n_rows} rows of {source}, a table other than the one trained on ({self._trained_on})"
        if self.n_val:
            return f"the {self.n_val} held-out rows of {source} (val_fraction {self.hparams.val_fraction:g})"
        return f"all {self.n_rows} rows of {source}: no rows were held out, so these are the training rows"

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        # Lightning's generic version walks the batch as a collection, ~20 µs a step; this one knows its shape.
        x, y, weights, size = batch
        weights = None if weights is None else weights.to(device, non_blocking=True)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True), weights, size

    def _evaluation_loader(self, x: Tensor, y: Tensor) -> DataLoader:
        # Under DDP each rank measures its own contiguous slice; the metrics are sums, added across ranks.
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        bounds = torch.linspace(0, len(x), world + 1).round().long().tolist()
        rows = Rows(x[bounds[rank] : bounds[rank + 1]], y[bounds[rank] : bounds[rank + 1]])
        return DataLoader(rows, sampler=SequentialSampler(rows), batch_size=EVALUATION_BATCH, collate_fn=whole_batch)

    def _move_to_accelerator_once(self) -> None:
        """On a GPU, data that fits (under half the free memory) moves there once, so batches never travel."""
        device = self.trainer.strategy.root_device
        if device.type != "cuda" or self.x.device == device or self.memory_mapped:
            return
        free, _ = torch.cuda.mem_get_info(device)
        if (self.x.nbytes + self.y.nbytes) < free / 2:
            self.x, self.y = self.x.to(device), self.y.to(device)
            self.weights = None if self.weights is None else self.weights.to(device)

    # ------------------------------------------------------------------------------------------------------------
    # Predict files

    def predict_table(self) -> PredictTable:
        """What predict reads, read once (the loader and the predictions writer both need it): ``predict_path``,
        else the table itself in its own row order, else the planted rows."""
        if self._predict_table is None:
            hp = self.hparams
            path = hp.predict_path or hp.get("path")
            if path is not None:
                columns = self.columns or Columns(self.target, list(self.feature_names), {})
                self._predict_table = PredictTable.read(path, columns, self.csv_format, hp.get("missing", "error"))
            else:
                self._load()
                self._predict_table = PredictTable.of_rows(self.x, self.y, self.feature_names, self.target)
        return self._predict_table

    # ------------------------------------------------------------------------------------------------------------
    # Checkpoint state: what the rows were, so that test and validate can check they measure the same split.

    def state_dict(self) -> dict[str, Any]:
        if self.y is None:
            return {}
        return {"rows": self.n_rows, "target_sum": self._target_sum(), "path": self.source.name}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self._trained_on = state_dict.get("path") or PlantedPeople.name
        if self.y is None or self._trained_on != self.source.name:
            return
        rows, total = state_dict["rows"], state_dict["target_sum"]
        now = self._target_sum()
        if rows != self.n_rows or abs(now - total) > 1e-9 * max(abs(total), 1.0):
            raise UsageError(
                f"{self.source.name} is not the table the checkpoint was trained on: it has {self.n_rows} rows "
                f"(checkpoint: {rows}){'' if rows != self.n_rows else ' and other values'}, so its held-out split "
                "would differ"
            )

    def _target_sum(self) -> float:
        """Σy in float64, a block at a time (a float64 copy of 10M targets would be 80 MB at every save)."""
        if self._y_sum is None:
            self._y_sum = sum(float(block.double().sum()) for block in self.y.split(1 << 16))
        return self._y_sum


def _held_out_last(n_rows: int, n_val: int, generator: torch.Generator) -> Tensor:
    """The row order that moves a seeded random n_val rows to the end, applied once, so that both sets are
    views: no copy per loader."""
    held_out = torch.randperm(n_rows, generator=generator)[:n_val]
    keep = torch.ones(n_rows, dtype=torch.bool)
    keep[held_out] = False
    return torch.cat([keep.nonzero().squeeze(1), held_out.sort().values])
