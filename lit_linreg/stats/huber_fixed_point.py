"""Huber's M-estimate with its MAD scale, at the joint fixed point, for many targets at once.

The fixed point of Σψ_k(r_i/s)·d_i = 0 and s = median|r| / Φ⁻¹(3/4) (statsmodels' RLM(M=HuberT(k)) with its defaults)
is exact once the rows inside the threshold, the others' signs and the rows at the median are known: both equations
are then linear in (β, s). ``m_estimates`` finds those sets by IRLS, trying the linear solution at every step, for a
batch of targets (the refitted bootstrap's draws, ``stats.huber_bootstrap``); ``stats.optimum.huber_m_estimate``
ends its own iteration for one table with the same solution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MAD_NORMAL = 0.6744897501960817  # Φ⁻¹(3/4): normal errors' MAD over this is their standard deviation
MAX_ITERATIONS = 500  # IRLS steps a fit at most: the last of 5,000 draws of a 16-row table settled in about 100
EXACT_FIT = 1e-9  # a MAD scale this small a part of the target's standard deviation is 0 but for rounding


def m_estimates(
    design: Tensor,
    targets: Tensor,
    k: float,
    outer: Tensor | None = None,
    start: Tensor | None = None,
    max_iterations: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(β (m, p), scale (m,), whether each reached the fixed point (m,)): Huber's M-estimate of each row of
    ``targets`` (m, n) on ``design`` ((n, p), or one (m, n, p) a target) at the joint fixed point with its MAD
    scale, as statsmodels' RLM(M=HuberT(k)) iterates to it and ``stats.optimum.huber_m_estimate`` solves it (the
    same point where there is one only): IRLS from least squares (from ``start``, where given), the scale
    re-estimated each step, and at each step the fixed point itself tried (``_joint_solution``), each fit done when
    that holds; one not done after ``max_iterations`` steps (default ``MAX_ITERATIONS``) is the last step's, and one
    whose MAD scale reaches 0 (``EXACT_FIT`` of its target's standard deviation: most of its rows fitted exactly) is
    NaN, β and scale. ``outer`` (n, p²), the rows' d_i d_iᵀ (``outer_products``), makes the Gram
    matrices of a shared design one matrix product.

    (IRLS alone converges linearly, and slowly where the scale and the rows beyond the threshold move together:
    to a step of 1e-10, some of 5,000 draws of a 16-row table took 500 steps. The fixed point is exact once the
    rows inside the threshold, the signs and the rows at the median are known, which IRLS finds in a few.)"""
    shared = design.dim() == 2
    outer = outer if outer is not None or not shared else outer_products(design)
    if start is not None:
        beta = start.clone()
    elif shared:
        beta = torch.linalg.lstsq(design, targets.T).solution.T.contiguous()
    else:
        beta = torch.linalg.lstsq(design, targets[:, :, None]).solution[:, :, 0]
    m = len(beta)
    scale = torch.zeros(m, dtype=torch.float64)
    settled = torch.zeros(m, dtype=torch.bool)
    floor = EXACT_FIT * targets.std(1)
    active = torch.arange(m)
    for _ in range(MAX_ITERATIONS if max_iterations is None else max_iterations):
        d = design if shared else design[active]
        y = targets[active]
        residual = y - _apply(d, beta[active])
        size, order = residual.abs().sort(1)
        current = _middle(size) / MAD_NORMAL
        # A MAD scale of 0 (most of the rows fitted exactly) weights every other row 0: no fit to scale, no t.
        vanished = ~(current > floor[active])
        beta[active[vanished]], scale[active[vanished]] = math.nan, math.nan
        d, y, residual, current, order = (
            d if shared else d[~vanished],
            y[~vanished],
            residual[~vanished],
            current[~vanished],
            order[~vanished],
        )
        active = active[~vanished]
        if len(active) == 0:
            break
        exact, exact_scale, holds = _joint_solution(d, y, residual, current, order, k, outer)
        beta[active[holds]], scale[active[holds]] = exact[holds], exact_scale[holds]
        settled[active[holds]] = True
        # An IRLS step for the others: weights min(1, k·s/|r|).
        size, cut = residual.abs(), k * current[:, None]
        weight = torch.where(size <= cut, 1.0, cut / size.clamp(min=1e-300))
        gram, moment = _weighted(d, y, weight, outer)
        step, info = torch.linalg.solve_ex(gram[~holds], moment[~holds])
        failed = info != 0  # too few rows inside the threshold to span the design: no step, as for a scale of 0
        step[failed] = math.nan
        beta[active[~holds]] = step
        scale[active[~holds][failed]] = math.nan
        active = active[~holds][~failed]
        if len(active) == 0:
            break
    if len(active):  # not settled (none seen): the last IRLS step, and its scale
        scale[active] = mad(targets[active] - _apply(design if shared else design[active], beta[active]))
    return beta, scale, settled


def _joint_solution(
    design: Tensor, targets: Tensor, residual: Tensor, scale: Tensor, order: Tensor, k: float, outer: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """(β, scale, whether it holds) of the joint fixed point Σψ(r_i)d_i = 0, MAD(r)·Φ⁻¹(3/4) = s, ψ = r clipped at
    ±k·s, for each target, with the rows inside the threshold, the others' signs and the rows at the median taken
    from ``residual`` (its MAD ``scale``, ``order`` its rows by size). These fixed, both equations are linear in
    (β, s):
        Σ_inside d_i d_iᵀ β - k·s·Σ_outside sign_i d_i = Σ_inside y_i d_i,
        Φ⁻¹(3/4)·s + mean_median sign_i d_iᵀβ = mean_median sign_i y_i;
    the solution holds where its own residuals give back the sets assumed, to rounding."""
    m, n = residual.shape
    p = design.shape[-1]
    inside = (residual.abs() <= k * scale[:, None]).double()
    sign = residual.sign()
    middle = order[:, n // 2 : n // 2 + 1] if n % 2 else order[:, n // 2 - 1 : n // 2 + 1]
    at_median = torch.zeros_like(residual).scatter_(1, middle, 1.0 / middle.shape[1]) * sign
    system = torch.zeros(m, p + 1, p + 1, dtype=torch.float64)
    right = torch.zeros(m, p + 1, dtype=torch.float64)
    gram, moment = _weighted(design, targets, inside, outer)
    system[:, :p, :p] = gram
    system[:, :p, p] = -k * _transpose_apply(design, (1 - inside) * sign)
    system[:, p, :p] = _transpose_apply(design, at_median)
    system[:, p, p] = MAD_NORMAL
    right[:, :p], right[:, p] = moment, (at_median * targets).sum(1)
    solution, info = torch.linalg.solve_ex(system, right)
    beta, solved_scale = solution[:, :p], solution[:, p]
    residual = targets - _apply(design, beta)
    cut = k * solved_scale[:, None]
    psi = torch.maximum(torch.minimum(residual, cut), -cut)
    balance = _transpose_apply(design, psi).abs().amax(1)
    scale_error = (mad(residual) - solved_scale).abs()
    reach = residual.abs().amax(1) * design.abs().amax((-2, -1)) * n
    holds = (info == 0) & (solved_scale > 0) & (balance <= 1e-11 * reach) & (scale_error <= 1e-12 * solved_scale)
    return beta, solved_scale, holds


def _weighted(design: Tensor, targets: Tensor, weight: Tensor, outer: Tensor | None) -> tuple[Tensor, Tensor]:
    """(Dᵀdiag(w)D, Dᵀdiag(w)y) for each row w of ``weight`` and y of ``targets``."""
    p = design.shape[-1]
    if design.dim() == 2:
        return (weight @ outer).view(-1, p, p), (weight * targets) @ design
    return (design * weight[:, :, None]).transpose(1, 2) @ design, _transpose_apply(design, weight * targets)


def _transpose_apply(design: Tensor, v: Tensor) -> Tensor:
    """Dᵀv for each row v (m, n): (m, p)."""
    return v @ design if design.dim() == 2 else (v[:, None, :] @ design)[:, 0]


def mad(residual: Tensor) -> Tensor:
    """Each row's median |r| / Φ⁻¹(3/4), the median numpy's (the mean of the middle two for an even count)."""
    return _middle(residual.abs().sort(1).values) / MAD_NORMAL


def _middle(ordered: Tensor) -> Tensor:
    """The median of each row of ``ordered`` (sorted rows)."""
    n = ordered.shape[1]
    return ordered[:, n // 2] if n % 2 else (ordered[:, n // 2 - 1] + ordered[:, n // 2]) / 2


def _apply(design: Tensor, beta: Tensor) -> Tensor:
    """D·β for each row of ``beta`` (m, p): (m, n)."""
    return beta @ design.T if design.dim() == 2 else (design @ beta[:, :, None])[:, :, 0]


def outer_products(design: Tensor) -> Tensor:
    """Each row's d_i d_iᵀ, flattened (n, p²): a shared design's weighted Gram matrices are then one product."""
    return (design[:, :, None] * design[:, None, :]).flatten(1)
