"""LinRegDataModule: the rows to fit, the held-out split, and the batches of every step."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, SequentialSampler

from lit_linreg.data.planted import TUTORIAL_FEATURES, TUTORIAL_TARGET, planted_rows
from lit_linreg.data.rows import Batch, BatchLoader, Rows, whole_batch
from lit_linreg.data.sampler import StepBatches
from lit_linreg.data.store import PredictTable, load_design
from lit_linreg.data.table import Columns, CsvFormat, choose_columns, read_file, resolve_columns
from lit_linreg.errors import UsageError
from lit_linreg.stats.training import TrainingStatistics

PLANTED_ARGS = ["n_samples", "true_w", "true_b", "noise_std", "noise_mean", "feature_names"]
TABLE_ARGS = ["path", "target", "features", "categorical", "missing", "delimiter", "encoding", "memory_map"]
# The shortest epoch ``passes_per_epoch: null`` makes: the tutorial's (500 rows at batch 16).
MIN_STEPS_PER_EPOCH = 32
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
        csv_path: the former name of ``path``, still accepted.
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
        csv_path: str | None = None,
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
        if path is not None and csv_path is not None and path != csv_path:
            raise UsageError(f"--data.path {path} and --data.csv_path {csv_path} name different tables: give one")
        path = path if path is not None else csv_path
        self.planted = path is None
        self._statistics: TrainingStatistics | None = None
        self.save_hyperparameters(ignore=["csv_path", *(TABLE_ARGS if self.planted else PLANTED_ARGS)], logger=False)
        self.true_w: list[float] | None = None
        self.true_b: float | None = None
        self.columns: Columns | None = None
        self.notes: list[str] = []
        self._table = None  # the file as read at start-up, converted in setup
        self._mapped = None  # or its memory-mapped cache
        self._predict_table: PredictTable | None = None
        self._trained_on: str | None = None  # the table of the checkpoint this data was restored from
        if self.planted:
            _check_planted(n_samples, true_w, noise_std, feature_names)
            self.feature_names = list(feature_names or [f"x{i + 1}" for i in range(len(true_w))])
            self.target = TUTORIAL_TARGET
            # What the fit should find: the noise mean adds to the planted bias (the tutorial's 1.1 became 1.0).
            self.true_w, self.true_b = list(true_w), true_b + noise_mean
        else:
            if target is None:
                raise UsageError(f"--data.path {path} needs --data.target, the column to predict")
            self.hparams.path = path
            self.columns = self._resolve_columns(path, target, features, categorical)
            # The checkpoint records the columns actually used, so a model can be applied without the table.
            self.hparams.features = list(self.columns.features)
            self.hparams.categorical = {k: list(v) for k, v in self.columns.categorical.items()}
            self.feature_names = self.columns.names
            self.target = target
        self.x: Tensor | None = None
        self.y: Tensor | None = None
        self.n_rows = self.n_train = self.n_val = 0
        self._y_sum: float | None = None
        self._batch_size: int | None = batch_size

    def _resolve_columns(self, path: str, target: str, features: list[str] | str | None, categorical: Any) -> Columns:
        features = [features] if isinstance(features, str) else features
        categorical = [categorical] if isinstance(categorical, str) else categorical
        hp = self.hparams
        if hp.memory_map:  # streamed into the memory-mapped cache, which remembers the columns it made
            from lit_linreg.data.mapped import open_mapped

            self._mapped = open_mapped(path, target, features, categorical, hp.missing, self.csv_format)
            return self._mapped.columns
        if features is not None and isinstance(categorical, dict):  # fully given (from a checkpoint, say)
            return Columns(target, list(features), {k: list(v) for k, v in categorical.items()})
        self._table = read_file(path, "--data.path", self.csv_format)
        features = choose_columns(self._table.column_names, target, features, path)
        self._table = self._table.select([*features, target])
        return resolve_columns([self._table], self._table.schema, target, features, categorical or [], path)

    @property
    def memory_mapped(self) -> bool:
        """Whether the rows stay on disk (``memory_map``): then the end-of-fit analysis streams them too."""
        return self._mapped is not None

    @property
    def n_features(self) -> int:
        """How many weights the model needs; the CLI hands it to the model."""
        return len(self.feature_names)

    @property
    def batch_size(self) -> int:
        """Rows per SGD step: as given, or chosen from the training rows when ``batch_size`` is null."""
        if self._batch_size is None:
            self._batch_size = auto_batch_size(self.n_train, self.training_statistics())
        return self._batch_size

    @property
    def passes_per_epoch(self) -> int:
        """Passes over the training rows an epoch: as given, or enough for ``MIN_STEPS_PER_EPOCH`` when null."""
        if self.hparams.passes_per_epoch is not None:
            return self.hparams.passes_per_epoch
        return math.ceil(MIN_STEPS_PER_EPOCH / math.ceil(self.n_train / self.batch_size))

    @property
    def steps_per_epoch(self) -> int:
        return self.passes_per_epoch * math.ceil(self.n_train / self.batch_size)

    def recommended_epochs(self, target_steps: int) -> int:
        """Epochs for a run of about ``target_steps`` SGD steps: at least 8 (every row seen several times), at most
        200; the CLI uses it when max_epochs and max_steps are unset."""
        self.setup("fit")
        return min(200, max(8, math.ceil(target_steps / self.steps_per_epoch)))

    # ------------------------------------------------------------------------------------------------------------
    # Loading

    def setup(self, stage: str | None = None) -> None:
        if self.x is not None:
            return
        if stage == "predict" and (self.hparams.predict_path is not None or not self.planted):
            return  # predict reads its own file (predict_table): the training rows are not needed
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp.seed)  # the data, then the held-out split
        if self.planted:
            x, y = planted_rows(hp.n_samples, hp.true_w, hp.true_b, hp.noise_std, hp.noise_mean, generator)
        elif self._mapped is not None:
            x, y, self._statistics = self._mapped.x, self._mapped.y, self._mapped.statistics
            self.notes.extend(self._mapped.notes)
        else:
            x, y, notes = load_design(self._table, self.columns, hp.path, hp.missing, self.csv_format)
            self._table = None
            self.notes.extend(notes)
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
            x, y = _held_out_last(x, y, self.n_val, generator)
        self.x, self.y = x, y

    def train_rows(self) -> tuple[Tensor, Tensor]:
        """The training rows (views, not copies)."""
        return self.x[: self.n_train], self.y[: self.n_train]

    def held_out_rows(self) -> tuple[Tensor, Tensor]:
        return self.x[self.n_train :], self.y[self.n_train :]

    def training_statistics(self) -> TrainingStatistics:
        """Moments, column checks and largest leverage of the training rows, in float64 (one or two passes)."""
        if self._statistics is None:
            self.setup("fit")
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
            self.batch_size,
            self.hparams.seed,
            first_step=lambda: trainer.global_step,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            block_rows=self.hparams.shuffle_block_rows,
            passes=self.passes_per_epoch,
        )
        return BatchLoader(Rows(*self.train_rows()), batches)

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
        source = _source(self.hparams.get("path"))
        if self._trained_on not in (None, source):  # the checkpoint's model, measured on another table
            return f"all {self.n_rows} rows of {source}, a table other than the one trained on ({self._trained_on})"
        if self.n_val:
            return f"the {self.n_val} held-out rows of {source} (val_fraction {self.hparams.val_fraction:g})"
        return f"all {self.n_rows} rows of {source}: no rows were held out, so these are the training rows"

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int) -> Batch:
        # Lightning's generic version walks the batch as a collection, ~20 µs a step; this one knows its shape.
        x, y, size = batch
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True), size

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
                self.setup("predict")
                self._predict_table = PredictTable.of_rows(self.x, self.y, self.feature_names, self.target)
        return self._predict_table

    # ------------------------------------------------------------------------------------------------------------
    # Checkpoint state: what the rows were, so that test and validate can check they measure the same split.

    def state_dict(self) -> dict[str, Any]:
        if self.y is None:
            return {}
        return {"rows": self.n_rows, "target_sum": self._target_sum(), "path": self.hparams.get("path")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self._trained_on = _source(state_dict.get("path"))
        if self.y is None or state_dict.get("path") != self.hparams.get("path"):
            return
        rows, total = state_dict["rows"], state_dict["target_sum"]
        now = self._target_sum()
        if rows != self.n_rows or abs(now - total) > 1e-9 * max(abs(total), 1.0):
            source = _source(self.hparams.get("path"))
            raise UsageError(
                f"{source} is not the table the checkpoint was trained on: it has {self.n_rows} rows (checkpoint: "
                f"{rows}){'' if rows != self.n_rows else ' and other values'}, so its held-out split would differ"
            )

    def _target_sum(self) -> float:
        """Σy in float64, a block at a time (a float64 copy of 10M targets would be 80 MB at every save)."""
        if self._y_sum is None:
            self._y_sum = sum(float(block.double().sum()) for block in self.y.split(1 << 16))
        return self._y_sum


def auto_batch_size(n_rows: int, statistics: TrainingStatistics, most: int = 8192) -> int:
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


def _source(path: str | None) -> str:
    """The rows' origin, in words: the table's path, or the planted data."""
    return path or "the planted data"


def _held_out_last(x: Tensor, y: Tensor, n_val: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Moves a seeded random n_val rows to the end, once, so that both sets are views: no copy per loader."""
    held_out = torch.randperm(len(x), generator=generator)[:n_val]
    keep = torch.ones(len(x), dtype=torch.bool)
    keep[held_out] = False
    order = torch.cat([keep.nonzero().squeeze(1), held_out.sort().values])
    return x[order], y[order]


def _check_planted(n_samples: int, true_w: list[float], noise_std: float, names: list[str] | None) -> None:
    if n_samples < 1:
        raise UsageError(f"--data.n_samples must be >= 1, got {n_samples}")
    if not noise_std >= 0:
        raise UsageError(f"--data.noise_std must be >= 0, got {noise_std}")
    if not true_w:
        raise UsageError("--data.true_w must name at least one weight, got []")
    if names is not None and len(names) != len(true_w):
        raise UsageError(
            f"--data.true_w has {len(true_w)} weights but --data.feature_names has {len(names)} "
            f"names ({names}); give one name per weight, or feature_names: null"
        )
