"""Which columns can be estimated, and how well: constant columns, exact linear dependencies, collinearity.

- A column is **constant** when its standard deviation is zero (to 1e-12 of its mean): its weight cannot be
  told apart from the bias.
- A column is **aliased** when the columns before it explain it up to 1e-10 of its variance (a rank-deficient
  design, as R's ``lm`` reports ``NA``): its weight is not identified, and it is left out of the exact fit.
- The **condition number** of the standardized design is sqrt(largest / smallest eigenvalue) of the correlation
  matrix of the columns kept. Above 30 (Belsley, Kuh and Welsch, 1980) the weights are poorly determined; the
  columns named are those whose variance owes more than half to a near-dependency (their variance-decomposition
  proportions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lit_linreg.stats.moments import Moments

CONSTANT_RTOL = 1e-12
ALIASED_TOL = 1e-10
COLLINEAR_CONDITION = 30.0


@dataclass
class DesignCheck:
    """The verdict on the columns: what the exact fit keeps, and the warnings to print."""

    kept: list[int]
    constant: list[int] = field(default_factory=list)
    aliased: dict[int, list[int]] = field(default_factory=dict)  # left-out column -> the columns it is made of
    condition_number: float | None = None
    collinear: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_design(moments: Moments, names: list[str]) -> DesignCheck:
    std, mean = moments.x_std, moments.x_mean
    constant = [j for j in range(len(names)) if std[j] <= CONSTANT_RTOL * mean[j].abs() or std[j] == 0]
    kept: list[int] = []
    aliased: dict[int, list[int]] = {}
    varying = [j for j in range(len(names)) if j not in constant]
    corr = moments.correlation(varying) if varying else torch.empty(0, 0, dtype=torch.float64)
    # The Cholesky factor of the kept columns' correlations, grown a column at a time: each column's share of
    # variance the kept ones leave unexplained is then one triangular solve, O(p²), so all of them O(p³).
    factor = torch.zeros(len(varying), len(varying), dtype=torch.float64)
    positions: list[int] = []  # the kept columns' places in ``corr``
    for position, j in enumerate(varying):
        k = len(kept)
        lower = factor[:k, :k]
        projection = torch.linalg.solve_triangular(lower, corr[positions, position][:, None], upper=False).squeeze(1)
        unexplained = float(1 - projection @ projection)
        if k and unexplained < ALIASED_TOL:
            coef = torch.linalg.solve_triangular(lower.T, projection[:, None], upper=True).squeeze(1)
            sizes = coef.abs()
            aliased[j] = [kept[i] for i in range(k) if sizes[i] > 1e-6 * sizes.max()]
            continue
        factor[k, :k], factor[k, k] = projection, max(unexplained, 0.0) ** 0.5
        kept.append(j)
        positions.append(position)
    check = DesignCheck(kept, constant, aliased)
    for j in constant:
        check.warnings.append(
            f"column {names[j]!r} is constant ({float(mean[j]):.6g}): its weight cannot be told from the bias, "
            "so it is left out of the exact fit (weight 0)"
        )
    for j, parts in aliased.items():
        made_of = ", ".join(repr(names[i]) for i in parts)
        check.warnings.append(
            f"the design is rank-deficient: {names[j]!r} is a linear combination of {made_of}, so its weight is "
            "not identified and it is left out of the exact fit (weight 0)"
        )
    if len(kept) >= 2:
        _condition(check, moments, names)
    elif kept:
        check.condition_number = 1.0
    return check


def _condition(check: DesignCheck, moments: Moments, names: list[str]) -> None:
    eigenvalues, vectors = torch.linalg.eigh(moments.correlation(check.kept))
    eigenvalues = eigenvalues.clamp(min=torch.finfo(torch.float64).tiny)
    check.condition_number = float((eigenvalues[-1] / eigenvalues[0]).sqrt())
    if check.condition_number <= COLLINEAR_CONDITION:
        return
    # Belsley's variance-decomposition proportions: the share of each weight's variance due to each eigenvalue.
    shares = vectors.square() / eigenvalues
    shares = shares / shares.sum(1, keepdim=True)
    weak = (eigenvalues[-1] / eigenvalues).sqrt() > COLLINEAR_CONDITION
    involved = [check.kept[i] for i in range(len(check.kept)) if (shares[i, weak] > 0.5).any()]
    check.collinear = involved
    listed = ", ".join(repr(names[j]) for j in involved) or "several columns"
    check.warnings.append(
        f"the columns are nearly collinear (condition number {check.condition_number:.3g} of the standardized "
        f"design, above {COLLINEAR_CONDITION:g}; involved: {listed}): their weights are poorly determined"
    )
