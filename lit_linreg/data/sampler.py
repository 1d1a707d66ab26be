"""Which rows each SGD step reads: a function of (seed, global step) and nothing else.

Step t of a run reads batch t mod S of epoch t div S (S steps an epoch). An epoch is one pass over the rows, or
several on a small table (``passes``); pass k of the run (counting from the first epoch's first pass) reads the
rows in a permutation drawn from (seed, k), so the order of the rows depends on the pass alone, however passes
are grouped into epochs. A run resumed at any step reads exactly the batches the uninterrupted run would have
read, with no sampler state to save: ``trainer.global_step``, which Lightning checkpoints, is the position.
Under DDP every rank walks the same global batches and takes its own slice of each, so every SGD step is the
same whatever the number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for the shuffle of ``epoch``: a function of (seed, epoch) and nothing else."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class StepBatches(Sampler):
    """Yields (this rank's row numbers, global batch size) for the steps of the current epoch still to run.

    Args:
        n_rows: rows to draw from.
        batch_size: rows in one global batch; an epoch's last batch may be smaller.
        seed: fixes the order of every epoch.
        first_step: called at the start of each epoch's iteration; returns the global step training is at.
        rank: this process's rank; it takes the ``rank``-th of ``world_size`` near-equal slices of each batch.
        world_size: processes sharing each global batch.
        block_rows: shuffle blocks of this many consecutive rows instead of single rows (1: rows).
        passes: passes over the rows in one epoch.
    """

    def __init__(
        self,
        n_rows: int,
        batch_size: int,
        seed: int,
        first_step: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        block_rows: int = 1,
        passes: int = 1,
    ) -> None:
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.first_step, self.rank, self.world_size, self.block_rows = first_step, rank, world_size, block_rows
        self.passes, self.batches_per_pass = passes, math.ceil(n_rows / batch_size)

    def __len__(self) -> int:
        return self.passes * self.batches_per_pass

    def order(self, run_pass: int) -> Tensor:
        """The permutation of the rows for pass ``run_pass`` of the run (int32: half of int64's memory at 10M rows).

        With one pass an epoch, ``run_pass`` is the epoch, as ``epoch_seed``'s argument has always been.
        """
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, run_pass))
        if self.block_rows == 1:
            return torch.randperm(self.n_rows, generator=generator, dtype=torch.int32)
        # Blocks of consecutive rows in random order: the gather then reads memory in runs, not row by row.
        n_blocks = math.ceil(self.n_rows / self.block_rows)
        starts = torch.randperm(n_blocks, generator=generator, dtype=torch.int32) * self.block_rows
        order = (starts[:, None] + torch.arange(self.block_rows, dtype=torch.int32)).flatten()
        return order[order < self.n_rows] if self.n_rows % self.block_rows else order

    def __iter__(self) -> Iterator[tuple[Tensor, int]]:
        epoch, position = divmod(self.first_step(), len(self))
        first_pass, first_batch = divmod(position, self.batches_per_pass)
        for run_pass in range(epoch * self.passes + first_pass, (epoch + 1) * self.passes):
            order = self.order(run_pass)
            # Lazily, batch by batch: at 10M rows and batch 16 the batches of an epoch are 625,000 small tensors.
            for start in range(first_batch * self.batch_size, self.n_rows, self.batch_size):
                batch = order[start : start + self.batch_size]
                yield batch.tensor_split(self.world_size)[self.rank], len(batch)
            first_batch = 0
