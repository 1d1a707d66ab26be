"""The design the exact fits work on: standardized columns plus a column of ones, in float64.

D = [(X - x̄) / s, 1] over the columns kept by ``check_design``, and t = (y - ȳ) / s_y. Fitting in these
coordinates is the numerically sound way (centring removes the collinearity of every column with the
intercept); weights and covariances are mapped back to the table's own units exactly, by a linear map.
The solvers use only D·β, Dᵀ·v and Dᵀ·diag(v)·D, so D can be built once (fast) or a block of rows at a time
(bounded memory, for tables that are memory-mapped).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from lit_linreg.stats.moments import CHUNK_ROWS, Moments


class DesignRows:
    """[Z, 1] and t for the rows of ``x`` and ``y``, standardized with ``moments``, for the columns ``kept``.

    Args:
        x: the rows (n, d), any float dtype, possibly memory-mapped.
        y: the targets (n,).
        moments: their moments (means and standard deviations).
        kept: the columns that enter the fit.
        materialize: build D and t in memory once (n x (len(kept) + 1) float64) instead of per block.
        scale: each row's factor (case weights as the loss takes them, ``Loss.row_scale``): the rows of D and t
            are multiplied by it, so that every fit and covariance below is the weighted one.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        moments: Moments,
        kept: list[int],
        materialize: bool = True,
        scale: Tensor | None = None,
    ) -> None:
        self.x, self.y, self.moments, self.kept = x, y, moments, kept
        self.scale = None if scale is None else scale.double()
        self.n, self.p = len(x), len(kept) + 1
        self._index = torch.tensor(kept, dtype=torch.long)
        self._mean = moments.x_mean[self._index]
        self._std = moments.x_std[self._index]
        self._d: Tensor | None = None
        self._t: Tensor | None = None
        if materialize:
            blocks = list(self._standardized_blocks())
            self._d = torch.cat([d for d, _ in blocks]) if blocks else torch.empty(0, self.p, dtype=torch.float64)
            self._t = torch.cat([t for _, t in blocks]) if blocks else torch.empty(0, dtype=torch.float64)

    @classmethod
    def from_matrix(cls, d: Tensor, t: Tensor, like: DesignRows) -> DesignRows:
        """Rows already in the coordinates of ``like`` (a bootstrap resample of them, say)."""
        rows = cls.__new__(cls)
        rows.x = rows.y = rows.scale = None  # already scaled, if ``like`` was
        rows.moments, rows.kept, rows._index = like.moments, like.kept, like._index
        rows._mean, rows._std = like._mean, like._std
        rows.n, rows.p = d.shape
        rows._d, rows._t = d, t
        return rows

    @property
    def t(self) -> Tensor:
        """The standardized targets, all of them (n,)."""
        return self._t if self._t is not None else torch.cat([t for _, t in self.blocks()])

    def _standardized_blocks(self) -> Iterator[tuple[Tensor, Tensor]]:
        ones = torch.ones(CHUNK_ROWS, 1, dtype=torch.float64)
        y_std = self.moments.y_std if self.moments.y_std > 0 else 1.0
        for start in range(0, self.n, CHUNK_ROWS):
            xs = self.x[start : start + CHUNK_ROWS].index_select(1, self._index).double()
            z = (xs - self._mean) / self._std
            t = (self.y[start : start + CHUNK_ROWS].double() - self.moments.y_mean) / y_std
            d = torch.cat([z, ones[: len(z)]], 1)
            if self.scale is not None:
                factor = self.scale[start : start + CHUNK_ROWS]
                d, t = d * factor[:, None], t * factor
            yield d, t

    def blocks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """(D, t) a block of rows at a time."""
        if self._d is None:
            yield from self._standardized_blocks()
            return
        for start in range(0, self.n, CHUNK_ROWS):
            yield self._d[start : start + CHUNK_ROWS], self._t[start : start + CHUNK_ROWS]

    def matrix(self) -> Tensor | None:
        """All of D when it is held in memory, else None."""
        return self._d

    # In memory, each product is one call; streamed, a sum over blocks. (The interior point makes ~10 of them an
    # iteration: on a 16-row table the blocks' bookkeeping took as long as the arithmetic.)

    def residuals(self, beta: Tensor) -> Tensor:
        """t - D·β for every row (n,)."""
        if self._d is not None:
            return self._t - self._d @ beta
        return torch.cat([t - d @ beta for d, t in self.blocks()])

    def matvec(self, beta: Tensor) -> Tensor:
        if self._d is not None:
            return self._d @ beta
        return torch.cat([d @ beta for d, _ in self.blocks()])

    def rmatvec(self, v: Tensor) -> Tensor:
        """Dᵀ·v."""
        if self._d is not None:
            return self._d.T @ v
        out = torch.zeros(self.p, dtype=torch.float64)
        start = 0
        for d, _ in self.blocks():
            out += d.T @ v[start : start + len(d)]
            start += len(d)
        return out

    def gram(self, weights: Tensor | None = None) -> Tensor:
        """Dᵀ·diag(weights)·D (DᵀD without weights)."""
        if self._d is not None:
            return (self._d if weights is None else self._d * weights[:, None]).T @ self._d
        out = torch.zeros(self.p, self.p, dtype=torch.float64)
        start = 0
        for d, _ in self.blocks():
            weighted = d if weights is None else d * weights[start : start + len(d), None]
            out += weighted.T @ d
            start += len(d)
        return out

    def weights_to_original(self, beta: Tensor, d: int) -> tuple[Tensor, float]:
        """(w, b) in the table's units for all ``d`` columns (0 for those left out) from β in these coordinates."""
        jacobian, offset = self.jacobian(d)
        theta = jacobian @ beta + offset
        return theta[:-1], float(theta[-1])

    def jacobian(self, d: int) -> tuple[Tensor, Tensor]:
        """The affine map θ = J·β + c from β (kept columns, then the intercept) to (w for all d columns, b).

        w_j = β_j · s_y / s_j, and b = ȳ + s_y·β_0 - Σ_j w_j x̄_j. Covariances map as J·V·Jᵀ.
        """
        y_std = self.moments.y_std if self.moments.y_std > 0 else 1.0
        jacobian = torch.zeros(d + 1, self.p, dtype=torch.float64)
        for i, j in enumerate(self.kept):
            jacobian[j, i] = y_std / self._std[i]
            jacobian[d, i] = -y_std * self._mean[i] / self._std[i]
        jacobian[d, -1] = y_std
        offset = torch.zeros(d + 1, dtype=torch.float64)
        offset[d] = self.moments.y_mean
        return jacobian, offset
