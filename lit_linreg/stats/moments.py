"""One pass over the rows: counts, means, standard deviations and centred cross-products, in float64.

Everything that needs only second moments starts here: the standardization the model trains with, the
preconditioner, the condition number, the constant and aliased columns, and least squares on tables too big to
hold twice. The pass reads ``CHUNK_ROWS`` rows at a time, so it works on memory-mapped tables with bounded
memory, and merges chunks with Chan, Golub and LeVeque's pairwise update, which stays accurate where the naive
sum of squares loses every digit (a column of years, say, whose mean dwarfs its spread).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

CHUNK_ROWS = 1 << 16


def row_chunks(x: Tensor, y: Tensor | None = None, rows: int = CHUNK_ROWS) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Consecutive blocks of rows as float64 (views are converted one block at a time)."""
    for start in range(0, len(x), rows):
        stop = start + rows
        yield x[start:stop].double(), None if y is None else y[start:stop].double()


@dataclass
class Moments:
    """First and second moments of the columns of X and of y over n rows (population, i.e. divided by n).

    Attributes:
        n: rows.
        x_mean, x_std: per column (d,).
        y_mean, y_std: of the target.
        xx: centred cross-products of the columns divided by n (d, d): their covariance.
        xy: centred cross-products of each column with y divided by n (d,).
    """

    n: int
    x_mean: Tensor
    x_std: Tensor
    y_mean: float
    y_std: float
    xx: Tensor
    xy: Tensor

    @staticmethod
    def of(x: Tensor, y: Tensor) -> Moments:
        return Moments.from_sums(*moment_sums(x, y))

    @staticmethod
    def from_sums(n: int, mean: Tensor, m2: Tensor) -> Moments:
        """From the row count, the mean of [X, y] and its centred sum of squares and cross-products."""
        cov = m2 / max(n, 1)
        std = cov.diagonal().clamp(min=0).sqrt()
        return Moments(n, mean[:-1], std[:-1], float(mean[-1]), float(std[-1]), cov[:-1, :-1], cov[:-1, -1])

    def correlation(self, columns: list[int]) -> Tensor:
        """The correlation matrix of the given (non-constant) columns."""
        idx = torch.tensor(columns, dtype=torch.long)
        s = self.x_std[idx]
        return self.xx[idx][:, idx] / torch.outer(s, s)


def moment_sums(x: Tensor, y: Tensor) -> tuple[int, Tensor, Tensor]:
    """(n, mean, centred sum of squares and cross-products) of the columns [X, y], merged chunk by chunk."""
    d = x.shape[1] + 1
    n, mean, m2 = 0, torch.zeros(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64)
    for xs, ys in row_chunks(x, y):
        block = torch.cat([xs, ys[:, None]], 1)
        n, mean, m2 = merge_moments((n, mean, m2), (len(block), block.mean(0), _centred_products(block)))
    return n, mean, m2


def merge_moments(a: tuple[int, Tensor, Tensor], b: tuple[int, Tensor, Tensor]) -> tuple[int, Tensor, Tensor]:
    """Chan et al.'s update: the moments of two sets of rows from each set's own."""
    (na, mean_a, m2_a), (nb, mean_b, m2_b) = a, b
    n = na + nb
    if n == 0:
        return a
    delta = mean_b - mean_a
    return n, mean_a + delta * (nb / n), m2_a + m2_b + torch.outer(delta, delta) * (na * nb / n)


def _centred_products(block: Tensor) -> Tensor:
    centred = block - block.mean(0)
    return centred.T @ centred
