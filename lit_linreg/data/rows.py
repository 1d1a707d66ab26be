"""Rows held in memory (or memory-mapped), gathered a whole batch at a time.

A batch is one ``index_select`` per tensor: no per-row ``__getitem__`` and no collate, which is where a
``TensorDataset`` spends its time. It is (X rows, y rows, their weights or None, size of the global batch they
belong to): the loss is divided by the global size, so the gradients DDP averages equal the single-process ones
however unevenly the ranks split a batch.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor
from torch.utils.data import Dataset

from lit_linreg.data.sampler import StepBatches

Batch = tuple[Tensor, Tensor, Tensor | None, int]


class Rows(Dataset):
    """X, y and the rows' weights (None: all 1); ``rows[(row_numbers, global_size)]`` is a training batch,
    ``rows.__getitems__`` an evaluation one (unweighted)."""

    def __init__(self, x: Tensor, y: Tensor, weights: Tensor | None = None) -> None:
        self.x, self.y, self.weights = x, y, weights

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[Tensor, int]) -> Batch:
        rows, global_size = key
        if len(rows) == len(self.x):  # every row: the mean loss is the same in any order, so no gather (a copy)
            return self.x, self.y, self.weights, global_size
        rows = rows.to(self.x.device, non_blocking=True)  # a no-op on the CPU; a few bytes when data sits on a GPU
        weights = None if self.weights is None else self.weights.index_select(0, rows)
        return self.x.index_select(0, rows), self.y.index_select(0, rows), weights, global_size

    def __getitems__(self, indices: list[int]) -> Batch:
        """A run of consecutive rows (evaluation loaders read the rows in order): a view, not a gather."""
        start, stop = indices[0], indices[-1] + 1
        return self.x[start:stop], self.y[start:stop], None, stop - start


class BatchLoader:
    """The training loader: the rows each step names (``sampler``), gathered from ``rows``, one batch per step.

    Lightning takes any sized iterable as a loader. A ``DataLoader`` here would only add its per-item machinery
    (index fetching, pin-memory checks: ~20 µs a step, a tenth of a step at the tutorial's size) to a batch
    that is already whole.
    """

    def __init__(self, rows: Rows, sampler: StepBatches) -> None:
        self.rows, self.sampler = rows, sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def state_dict(self) -> dict[str, int]:
        """Lightning checkpoints a loader's place; ours is the global step, which it restores itself."""
        return {"step": self.sampler.first_step()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        pass  # the place is the restored global step: nothing to load

    def __iter__(self) -> Iterator[Batch]:
        rows = self.rows
        for key in self.sampler:
            yield rows[key]


def whole_batch(batch: Batch) -> Batch:
    """The collate function of evaluation loaders: ``__getitems__`` already returns the whole batch."""
    return batch
