"""What SGD needs to know about the training rows before its first step, from one or two passes over them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lit_linreg.stats.design import DesignCheck, check_design
from lit_linreg.stats.moments import Moments, row_chunks


@dataclass
class TrainingStatistics:
    """The moments of the training rows, the verdict on their columns, and their largest leverage.

    ``max_leverage`` is the largest 1 + zᵢᵀC⁻¹zᵢ over the rows (z the standardized kept columns, C their
    correlation): the curvature one row adds to a batch, once the columns are whitened. A batch at least that
    large keeps a Newton-sized step stable.
    """

    moments: Moments
    design: DesignCheck
    max_leverage: float

    @staticmethod
    def of(x: Tensor, y: Tensor, names: list[str]) -> TrainingStatistics:
        moments = Moments.of(x, y)
        design = check_design(moments, names)
        return TrainingStatistics(moments, design, max_leverage(x, moments, design.kept))

    @staticmethod
    def from_moments(moments: Moments, names: list[str], largest_leverage: float = 1.0) -> TrainingStatistics:
        """From moments (and the largest leverage) computed already: a memory-mapped table's cache keeps them."""
        return TrainingStatistics(moments, check_design(moments, names), largest_leverage)

    def kept_mask(self) -> Tensor:
        """1.0 for each column the exact fit keeps, 0.0 for constant and aliased ones (float64)."""
        mask = torch.zeros(len(self.moments.x_mean), dtype=torch.float64)
        mask[self.design.kept] = 1.0
        return mask

    def whitening(self) -> Tensor:
        """C⁻¹ on the kept columns and 0 elsewhere (d x d, float64): the preconditioner of whitened SGD."""
        d = len(self.moments.x_mean)
        inverse = torch.zeros(d, d, dtype=torch.float64)
        if self.design.kept:
            index = torch.tensor(self.design.kept)
            inverse[index[:, None], index] = torch.linalg.inv(self.moments.correlation(self.design.kept))
        return inverse

    def largest_correlation_eigenvalue(self) -> float:
        if not self.design.kept:
            return 1.0
        return float(torch.linalg.eigvalsh(self.moments.correlation(self.design.kept))[-1])


def max_leverage(x: Tensor, moments: Moments, kept: list[int]) -> float:
    if not kept:
        return 1.0
    index = torch.tensor(kept)
    inverse = torch.linalg.inv(moments.correlation(kept))
    mean, std = moments.x_mean[index], moments.x_std[index]
    largest = 0.0
    for xs, _ in row_chunks(x):
        z = (xs.index_select(1, index) - mean) / std
        largest = max(largest, float(((z @ inverse) * z).sum(1).max()))
    return 1.0 + largest
