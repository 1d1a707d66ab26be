"""Data: the tutorial's planted-weights people, served as whole batches straight from memory.

Every batch is drawn with one ``index_select`` per tensor from rows held in memory: no per-sample
``__getitem__`` and no collate, which is where a ``TensorDataset`` spends its time. The shuffle of an epoch
depends only on (seed, epoch), so a run resumed at an epoch boundary sees exactly the batches an uninterrupted
run would. Under DDP every rank walks the same global batches and takes its own slice of each one, so the
global batch (and hence every SGD step) is the same whatever the number of processes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from lit_linreg.errors import UsageError
from lit_linreg.table import Table, choose_features, read_header, read_table

# With steps_per_call unset, one call gathers at most this many rows (8 MB at 16 features): enough steps to
# spread Lightning's per-call cost at small batches, a gather that stays in cache at large ones.
ROWS_PER_CALL = 131_072
TUTORIAL_FEATURES = ["appearance", "personality", "wealth", "inner_quality"]

# A batch as the model receives it: this rank's rows, their targets, and the size of the global batch they
# belong to (the loss is normalised by it, so gradients averaged over ranks equal the single-process ones).
Batch = tuple[Tensor, Tensor, int]
# Several consecutive batches gathered at once: all their rows, all their targets, then per batch the number
# of rows this rank holds and the global batch size. ``split_steps`` turns it back into batches.
Steps = tuple[Tensor, Tensor, tuple[int, ...], tuple[int, ...]]


def split_steps(steps: Steps) -> list[Batch]:
    x, y, local_sizes, global_sizes = steps
    return list(zip(x.split(local_sizes), y.split(local_sizes), global_sizes, strict=True))


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for the shuffle of ``epoch``: a function of (seed, epoch) and nothing else."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class InMemoryRows(Dataset):
    """Feature and target rows in memory; indexing with a tensor of row numbers returns the whole batch."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[Tensor, int] | list[tuple[Tensor, int]]) -> Batch | Steps:
        if isinstance(key, list):  # several batches: one gather for all of them, one small item for Lightning
            rows = torch.cat([r for r, _ in key]).to(self.x.device, non_blocking=True)
            local_sizes = tuple(len(r) for r, _ in key)
            return self.x.index_select(0, rows), self.y.index_select(0, rows), local_sizes, tuple(n for _, n in key)
        rows, global_size = key
        rows = rows.to(self.x.device, non_blocking=True)  # a no-op on the CPU; a few bytes when data sits on a GPU
        return self.x.index_select(0, rows), self.y.index_select(0, rows), global_size


class EpochBatches(Sampler):
    """Yields, batch by batch, the row numbers this rank reads, plus the global batch size.

    With ``batches_per_item`` set, it yields lists of that many consecutive batches instead (the last list of
    an epoch may be shorter), so that one ``training_step`` call can make several SGD steps.

    Args:
        n_rows: rows in the dataset.
        batch_size: rows in one global batch (the last batch of an epoch may be smaller).
        shuffle: draw a new order every epoch (from ``seed`` and the epoch number only).
        seed: fixes the order of every epoch.
        rank: this process's rank; it takes the ``rank``-th of ``world_size`` near-equal slices of each batch.
        world_size: number of processes sharing each global batch.
        batches_per_item: group this many batches into each item; ``None`` yields single batches.
        block_rows: shuffle blocks of this many consecutive rows instead of single rows (1: rows).
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        batches_per_item: int | None = None,
        block_rows: int = 1,
    ) -> None:
        self.n_rows, self.batch_size, self.shuffle, self.seed = n_rows, batch_size, shuffle, seed
        self.rank, self.world_size, self.batches_per_item = rank, world_size, batches_per_item
        self.block_rows = block_rows
        self.epoch = 0
        self._resume_at: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, items_done: int) -> None:
        """Makes the next pass over ``epoch`` skip the items already trained on."""
        self._resume_at = (epoch, items_done)

    def __len__(self) -> int:
        n_batches = math.ceil(self.n_rows / self.batch_size)
        return n_batches if self.batches_per_item is None else math.ceil(n_batches / self.batches_per_item)

    def _shuffled(self, generator: torch.Generator) -> Tensor:
        # int32: half the memory of the default int64 at 10M rows, and the same permutation.
        if self.block_rows == 1:
            return torch.randperm(self.n_rows, generator=generator, dtype=torch.int32)
        # Blocks of consecutive rows in random order: the gather then reads memory in runs, not row by row.
        n_blocks = math.ceil(self.n_rows / self.block_rows)
        starts = torch.randperm(n_blocks, generator=generator, dtype=torch.int32) * self.block_rows
        order = (starts[:, None] + torch.arange(self.block_rows, dtype=torch.int32)).flatten()
        return order[order < self.n_rows] if self.n_rows % self.block_rows else order

    def __iter__(self) -> Iterator[tuple[Tensor, int] | list[tuple[Tensor, int]]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = self._shuffled(generator)
        else:
            order = torch.arange(self.n_rows, dtype=torch.int32)
        items_done = 0
        if self._resume_at is not None:
            resume_epoch, items_done = self._resume_at
            self._resume_at = None
            items_done = items_done if resume_epoch == self.epoch else 0
        first_row = items_done * (self.batches_per_item or 1) * self.batch_size
        # Lazily, batch by batch: at 10M rows and batch 16, building every batch up front would hold
        # hundreds of thousands of small tensors before the first step.
        batches = (
            (batch.tensor_split(self.world_size)[self.rank], len(batch))
            for batch in (
                order[start : start + self.batch_size] for start in range(first_row, self.n_rows, self.batch_size)
            )
        )
        if self.batches_per_item is None:
            yield from batches
        else:
            while group := list(itertools.islice(batches, self.batches_per_item)):
                yield group


class ResumableLoader(DataLoader):
    """A DataLoader whose place in the epoch goes into Lightning's checkpoints, for exact mid-epoch resume.

    Lightning saves ``state_dict()`` of any loader that has one and hands it back on resume. The place is the
    number of items the training loop has finished (``items_done``), not how many this loader has yielded,
    which runs ahead of training by the prefetched item.
    """

    def __init__(self, dataset: Dataset, sampler: EpochBatches, items_done: Callable[[], int]) -> None:
        # batch_size=None: each item already is a batch, so the DataLoader neither batches nor collates.
        super().__init__(dataset, sampler=sampler, batch_size=None)
        self._items_done = items_done

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "items_done": self._items_done()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.resume_at(state["epoch"], state["items_done"])


@dataclass
class Scale:
    """Per-column mean and standard deviation of the training rows: what ``standardize`` divides out."""

    x_mean: Tensor
    x_std: Tensor
    y_mean: Tensor
    y_std: Tensor

    @staticmethod
    def of(x: Tensor, y: Tensor) -> Scale:
        def std(t: Tensor) -> Tensor:  # a constant column stays as it is instead of dividing by zero
            s = t.std(0, correction=0)
            return torch.where(s > 0, s, torch.ones_like(s))

        return Scale(x.mean(0), std(x), y.mean(), std(y))

    def x(self, x: Tensor) -> Tensor:
        return (x - self.x_mean) / self.x_std

    def y(self, y: Tensor) -> Tensor:
        return (y - self.y_mean) / self.y_std

    def x_back(self, x: Tensor) -> Tensor:
        return x * self.x_std + self.x_mean

    def y_back(self, y: Tensor) -> Tensor:
        return y * self.y_std.to(y.device) + self.y_mean.to(y.device)

    def weights(self, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """(y - ȳ)/s_y = Σ w_j (x_j - x̄_j)/s_j + b  ⇔  y = Σ (w_j s_y/s_j) x_j + ȳ + s_y b - Σ (w_j s_y/s_j) x̄_j."""
        x_mean, x_std, y_mean, y_std = (t.to(w.dtype) for t in (self.x_mean, self.x_std, self.y_mean, self.y_std))
        w_original = w * y_std / x_std
        return w_original, y_mean + y_std * b - w_original @ x_mean


class LinRegDataModule(L.LightningDataModule):
    """The rows to fit: planted-weights people (the default), or a table from a CSV file.

    Planted weights: X ~ N(0, 1), Y = X·w + b + ε, ε ~ N(noise_mean, noise_std). From CSV: the ``target`` column
    is Y and the ``features`` columns (default: all others) are X, named after the header.

    Args:
        n_samples: number of people (rows) to generate.
        true_w: the planted weight of each feature.
        true_b: the planted bias. The tutorial's generator ignores it (use ``true_b: 0`` with ``noise_mean: 1``).
        noise_std: standard deviation of the noise added to Y.
        noise_mean: mean of that noise; 1.0 reproduces the tutorial, whose effective bias is this mean.
        feature_names: one name per planted weight; ``null`` names them x1..xd.
        csv_path: fit this CSV file (header, then numeric rows) instead of generated data; the planted-data
            arguments above are then ignored.
        target: the CSV column to predict.
        features: the CSV columns to predict it from; ``null`` takes every column but the target.
        standardize: train on features and target scaled to mean 0, std 1 (weights are still reported, and
            predictions written, in the original units). Needed when columns have very different units.
        predict_path: the CSV file ``predict`` reads; it needs the feature columns only.
        batch_size: rows per SGD step (the global batch, split across processes under DDP).
        val_fraction: share of rows held out for validation, in [0, 1).
        steps_per_call: SGD steps made in one ``training_step`` call, each on its own batch and each counted
            in ``global_step``. It spreads Lightning's per-call cost over several steps and does not change
            the result. ``null`` picks min(32, 131072 // batch_size): 32 at batch 16, 8 at batch 16384, where
            a bigger gather would stop fitting in cache. Lightning's batch counts (progress bar,
            ``limit_train_batches``) count calls.
        shuffle_block_rows: shuffle blocks of this many consecutive rows rather than single rows. At millions
            of rows a random row gather is limited by memory latency; blocks read memory in runs (see the README
            for the measured speed and its cost in convergence on tables whose row order means something).
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
        csv_path: str | None = None,
        target: str | None = None,
        features: list[str] | None = None,
        standardize: bool = False,
        predict_path: str | None = None,
        batch_size: int = 16,
        val_fraction: float = 0.0,
        steps_per_call: int | None = None,
        shuffle_block_rows: int = 1,
        seed: int = 42,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise UsageError(f"--data.batch_size must be >= 1, got {batch_size}")
        if steps_per_call is not None and steps_per_call < 1:
            raise UsageError(f"--data.steps_per_call must be >= 1, got {steps_per_call}")
        if shuffle_block_rows < 1:
            raise UsageError(f"--data.shuffle_block_rows must be >= 1, got {shuffle_block_rows}")
        if not 0 <= val_fraction < 1:
            raise UsageError(f"--data.val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        if csv_path is None:
            self._check_planted(n_samples, true_w, noise_std, feature_names)
            self.feature_names = list(feature_names or [f"x{i + 1}" for i in range(len(true_w))])
            # What the fit should find: the noise mean adds to the planted bias (the tutorial's 1.1 became 1.0).
            self.true_w, self.true_b = list(true_w), true_b + noise_mean
            self._split(n_samples)
        else:
            if target is None:
                raise UsageError(f"--data.csv_path {csv_path} needs --data.target, the column to predict")
            self.feature_names = choose_features(read_header(csv_path), target, features, csv_path)
            self.true_w = self.true_b = None  # a real table has no planted weights
        self.x: Tensor | None = None
        self.y: Tensor | None = None
        self.scale: Scale | None = None
        self._predict_table: Table | None = None
        self.steps_per_call = steps_per_call or min(32, max(1, ROWS_PER_CALL // batch_size))

    @staticmethod
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

    def _split(self, n_rows: int) -> None:
        self.n_val = round(n_rows * self.hparams.val_fraction)
        if n_rows - self.n_val < 1:
            raise UsageError(f"--data.val_fraction {self.hparams.val_fraction} leaves no training rows of {n_rows}")
        self.n_train = n_rows - self.n_val

    @property
    def n_features(self) -> int:
        """How many weights the model needs; the CLI hands it to the model."""
        return len(self.feature_names)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_train / self.hparams.batch_size)

    def setup(self, stage: str | None = None) -> None:
        if self.x is not None:
            return
        hp = self.hparams
        generator = torch.Generator().manual_seed(hp.seed)
        if hp.csv_path is None:
            x = torch.randn(hp.n_samples, self.n_features, generator=generator)
            noise = torch.randn(hp.n_samples, generator=generator).mul_(hp.noise_std).add_(hp.noise_mean)
            y = (x @ torch.tensor(self.true_w)).add_(hp.true_b).add_(noise)  # in place: 10M rows peak lower
        else:
            table = read_table(hp.csv_path, hp.target, self.feature_names)
            x, y = table.x, table.y
            self._split(len(x))
        if self.n_val:
            # Move the held-out rows to the end, once, so that both sets are views: no copy per loader.
            held_out = torch.randperm(len(x), generator=generator)[: self.n_val]
            keep = torch.ones(len(x), dtype=torch.bool)
            keep[held_out] = False
            order = torch.cat([keep.nonzero().squeeze(1), held_out.sort().values])
            x, y = x[order], y[order]
        if hp.standardize:
            self.scale = Scale.of(x[: self.n_train], y[: self.n_train])
            x, y = self.scale.x(x), self.scale.y(y)
        self.x, self.y = x, y

    @property
    def train_data(self) -> tuple[Tensor, Tensor]:
        """The training rows (a view, not a copy), also used for the final full-data loss."""
        return self.x[: self.n_train], self.y[: self.n_train]

    @property
    def val_data(self) -> tuple[Tensor, Tensor]:
        """The held-out rows (a view)."""
        return self.x[self.n_train :], self.y[self.n_train :]

    def to_original_units(self, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Weights and bias for the data as given, from those learned on the (possibly standardized) data."""
        return (w, b) if self.scale is None else self.scale.weights(w, b)

    def to_original_target(self, prediction: Tensor) -> Tensor:
        return prediction if self.scale is None else self.scale.y_back(prediction)

    def _batches(
        self, n_rows: int, shuffle: bool, batches_per_item: int | None = None, block_rows: int = 1
    ) -> EpochBatches:
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        hp = self.hparams
        return EpochBatches(n_rows, hp.batch_size, shuffle, hp.seed, rank, world_size, batches_per_item, block_rows)

    def _loader(self, x: Tensor, y: Tensor) -> DataLoader:
        # batch_size=None: each item already is a batch, so the DataLoader neither batches nor collates.
        return DataLoader(InMemoryRows(x, y), sampler=self._batches(len(x), shuffle=False), batch_size=None)

    def _move_to_accelerator_once(self) -> None:
        """On a GPU, data that fits (under half the free memory) moves there once, so batches never travel."""
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        if device.type != "cuda" or self.x.device == device:
            return
        free, _ = torch.cuda.mem_get_info(device)
        if (self.x.nbytes + self.y.nbytes) < free / 2:
            self.x, self.y = self.x.to(device), self.y.to(device)

    def train_dataloader(self) -> DataLoader:
        """Each item holds ``steps_per_call`` batches (see ``Steps``); its place in the epoch is checkpointed."""
        self._move_to_accelerator_once()
        x, y = self.train_data
        hp = self.hparams
        batches = self._batches(
            len(x), shuffle=True, batches_per_item=self.steps_per_call, block_rows=hp.shuffle_block_rows
        )
        # At a save, the items of this epoch that training has finished (Lightning's own loop counter).
        items_done = lambda: self.trainer.fit_loop.epoch_loop.batch_progress.current.processed  # noqa: E731
        return ResumableLoader(InMemoryRows(x, y), batches, items_done)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(*self.val_data) if self.n_val else []

    def test_dataloader(self) -> DataLoader:
        """The held-out rows when there are any, else the training rows."""
        return self._loader(*(self.val_data if self.n_val else self.train_data))

    def predict_dataloader(self) -> DataLoader:
        """The rows of ``predict_path`` when given (target column optional), else every row of the data."""
        if self.hparams.predict_path is None:
            x = self.x
        else:
            x = self.predict_table().x
            x = x if self.scale is None else self.scale.x(x)
        return self._loader(x, torch.zeros(len(x)))

    def predict_table(self) -> Table:
        """What ``predict`` reads, in original units, with its rows as written (for the predictions file)."""
        if self._predict_table is None:
            hp = self.hparams
            if hp.predict_path is not None:
                target = hp.target or ""
                table = read_table(hp.predict_path, target, self.feature_names, "--data.predict_path", True)
            else:
                x = self.x if self.scale is None else self.scale.x_back(self.x)
                rows = [[f"{v:g}" for v in row] for row in x.tolist()]
                table = Table(self.feature_names, x, None, self.feature_names, rows)
            self._predict_table = table  # read once: the loader and the predictions writer both need it
        return self._predict_table
