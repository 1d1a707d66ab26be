"""Least squares' intervals by inverting the wild restricted bootstrap test of each coefficient's HC2 t.

The test of θ_j = b (θ = J·β + c, a coefficient in the table's units) is the wild bootstrap with the null imposed
(Davidson and Flachaire, 2008; the intervals by test inversion, as Stata's ``boottest``: Roodman, MacKinnon,
Nielsen and Webb, 2019). Its statistic is HC2's t, t(b) = (θ̂_j - b) / se_j. The restricted fit (least squares
under θ_j = b) leaves residuals ũ(b); each draw builds a target from the restricted fit plus ũ_i / √(1 - h̃_i)
times a weight v_i of mean 0 and variance 1 (h̃ the restricted fit's leverages: HC2's rescaling, which makes the
draws' variance right under homoscedastic errors), refits, and takes its own t about b. The test rejects where
|t(b)| is exceeded by at most α(B + 1) - 1 of the B draws' |t*|; the interval is where it does not reject, and the
p-value of θ_j = 0 is the same test's, (1 + #{|t*| >= |t(0)|}) / (B + 1), at least 1 / (B + 1). The weights are
Webb's (2023) six points ±√(1/2), ±1, ±√(3/2), each 1/6, whose draws stay distinct on 16 rows where Rademacher
signs repeat. B = ⌈50/α⌉ - 1 (999 at 95%).

Why this and not Student's t: the draws keep each row's residual where it is, so the test follows HC2's t where
its law is not Student's, on small tables whose leverage is uneven and with heavy-tailed errors, where one large
residual inflates both the estimate and its standard error. On 16- to 64-row designs with a parameter per 3 to 10
rows, Student's t on Bell and McCaffrey's degrees of freedom (the default before) covered 95.2-97.0%, this test's
intervals 94.6-95.8% (``benchmarks/coverage.py``; the candidates, ``benchmarks/sandwich_candidates.py``).

Everything is linear in b. With δ = θ̂_j - b, a = D(DᵀD)⁻¹g (g the coefficient's row of J) and k = aᵀa, the restricted
residuals are ũ = r + δ·a/k and h̃_i = h_i - a_i²/k, so each draw's numerator is N₀ + δN₁ and its HC2 variance
Q₀₀ + 2δQ₀₁ + δ²Q₁₁: five numbers a draw, computed once, and the ends are searched on them exactly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lit_linreg.stats.rows import DesignRows

WILD_BOOTSTRAP_NAME = (
    "inversion of the wild restricted bootstrap test of HC2's t (Davidson and Flachaire 2008; Webb's six-point "
    "weights, {draws} draws), with the p-values from the same test"
)
WEBB_POINTS = torch.tensor([-(1.5**0.5), -1.0, -(0.5**0.5), 0.5**0.5, 1.0, 1.5**0.5], dtype=torch.float64)
# The draws cost about 4·n·p multiply-adds each, for each of p coefficients: n·p²·B. Past this many (1e8 is 1,000
# rows with 10 parameters at 95%), Student's t on Bell and McCaffrey's degrees of freedom, which come close to it
# where rows are many for the parameters.
WILD_BOOTSTRAP_WORK = 100_000_000
# The draws are made this many numbers (draws x rows) at a time.
CHUNK_ELEMENTS = 1 << 21
HIGH = 1 - 1e-12  # a leverage this close to 1: the row is fitted exactly (residual 0) and weighs nothing


def wild_bootstrap_draws(alpha: float) -> int:
    """B for a test at level alpha: fifty draws beyond the cutoff, and α(B + 1) whole where 50/α is."""
    return math.ceil(50 / alpha - 1e-9) - 1


def wild_bootstrap_obstacle(rows: DesignRows, alpha: float) -> str | None:
    """Why the test cannot be run on these rows, or None where it can: the rows not in memory, or the draws past
    ``WILD_BOOTSTRAP_WORK``."""
    if rows.matrix() is None:
        return "the rows are not in memory"
    if rows.n * rows.p**2 * wild_bootstrap_draws(alpha) > WILD_BOOTSTRAP_WORK:
        return "too many rows x columns²"
    return None


def webb_indices(n: int, draws: int, seed: int) -> Tensor:
    """Which of Webb's six points each row's weight is in each draw, (draws, n), a byte each."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(6, (draws, n), generator=generator, dtype=torch.uint8)


def webb_weights(n: int, draws: int, seed: int) -> Tensor:
    """The (draws, n) weights v of the draws: Webb's six points, each with probability 1/6."""
    return WEBB_POINTS[webb_indices(n, draws, seed).long()]


def wild_bootstrap_intervals(
    rows: DesignRows, beta: Tensor, jacobian: Tensor, theta: Tensor, alpha: float, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor, str]:
    """(lower, upper, p-value of 0, the method's name) for each coefficient θ = J·β + c (NaN for a column left
    out), ``beta`` being least squares' optimum on ``rows`` and ``theta`` its coefficients; ``seed`` fixes the
    draws."""
    draws = wild_bootstrap_draws(alpha)
    fitted = jacobian.abs().sum(1) > 0
    contrasts = jacobian[fitted]
    design, residual = rows.matrix(), rows.residuals(beta)
    q, r = torch.linalg.qr(design)
    leverage = q.square().sum(1)
    hc2 = torch.where(leverage < HIGH, 1 / (1 - leverage), 0.0)
    a = q @ torch.linalg.solve_triangular(r.T, contrasts.T, upper=False)  # (n, m): g'β̂ = aᵀt
    k = a.square().sum(0)
    # The restricted fits' leverages, and HC2's rescaling of their residuals.
    restricted = 1 - leverage[:, None] + a.square() / k
    rescale = torch.where(restricted > 1 - HIGH, restricted.clamp(min=1 - HIGH).rsqrt(), 0.0)
    u = (a.square() * hc2[:, None]).T  # (m, n): HC2's variance of a contrast is Σ u_i r_i²
    std_error = (u @ residual.square()).sqrt()
    base, slope = (residual[:, None] * rescale).T, (a * rescale / k).T  # ũ/√(1 - h̃) = base + δ·slope
    parts = []
    step = max(1, CHUNK_ELEMENTS // rows.n)
    indices = webb_indices(rows.n, draws, seed)  # a byte a weight until used: 1,000 draws of 10,000 rows are 10 MB
    for start in range(0, draws, step):
        v = WEBB_POINTS[indices[start : start + step].long()]  # (b, n)
        parts.append(torch.stack([_draw_sums(q, a[:, j], u[j], base[j] * v, slope[j] * v) for j in range(len(k))]))
    sums = torch.cat(parts, 2)  # (m, 5, B): N₀, N₁, Q₀₀, Q₀₁, Q₁₁
    estimates = theta[fitted]
    # The test of θ_j = 0 is at δ = θ̂_j; each end is where the test starts to reject, going out from θ̂_j.
    p_value = (1 + _exceeding(sums, estimates, std_error)).double() / (draws + 1)
    rejects = math.floor(alpha * (draws + 1) + 1e-9)  # rejected where 1 + #{|t*| >= |t|} <= α(B + 1)
    below = _end(sums, std_error, rejects, 1.0)
    above = _end(sums, std_error, rejects, -1.0)
    out = [torch.full((len(fitted),), math.nan, dtype=torch.float64) for _ in range(3)]
    for full, part in zip(out, (estimates - below, estimates + above, p_value), strict=True):
        full[fitted] = part
    return out[0], out[1], out[2], WILD_BOOTSTRAP_NAME.format(draws=draws)


def _draw_sums(q: Tensor, a: Tensor, u: Tensor, e0: Tensor, e1: Tensor) -> Tensor:
    """(5, b) for one contrast: each draw's N₀, N₁ (aᵀ of its errors at δ = 0 and per unit δ) and Q₀₀, Q₀₁, Q₁₁
    (its HC2 variance Σ u_i r_i², r its residuals, as a quadratic in δ)."""
    r0, r1 = e0 - (e0 @ q) @ q.T, e1 - (e1 @ q) @ q.T
    return torch.stack([e0 @ a, e1 @ a, r0.square() @ u, (r0 * r1) @ u, r1.square() @ u])


def _exceeding(sums: Tensor, delta: Tensor, std_error: Tensor) -> Tensor:
    """#{draws with |t*(δ)| >= |t(δ)|} for each contrast at its δ: t(δ) = δ/se, t* = (N₀ + δN₁)/√Q(δ)."""
    n0, n1, q00, q01, q11 = sums.unbind(1)
    delta = delta[:, None]
    variance = q00 + 2 * delta * q01 + delta.square() * q11
    return ((n0 + delta * n1).square() * std_error[:, None].square() >= delta.square() * variance).sum(1)


def _end(sums: Tensor, std_error: Tensor, rejects: int, side: float) -> Tensor:
    """How far from θ̂ each interval reaches on one side (δ of that sign): the test does not reject at δ = 0;
    the search doubles δ until it does, then halves the step to 1e-10 of the standard error. Infinite where it
    never rejects (the draws' t grow as fast as the observed one)."""

    def rejected(distance: Tensor) -> Tensor:
        return 1 + _exceeding(sums, side * distance, std_error) <= rejects

    inside, outside = torch.zeros_like(std_error), std_error.clone()
    for _ in range(64):
        out = rejected(outside)
        if bool(out.all()):
            break
        inside, outside = torch.where(out, inside, outside), torch.where(out, outside, 2 * outside)
    unbounded = ~out
    outside = torch.where(unbounded, inside, outside)
    while bool(((outside - inside) > 1e-10 * std_error).any()):
        middle = (inside + outside) / 2
        out = rejected(middle)
        inside, outside = torch.where(out, inside, middle), torch.where(out, middle, outside)
    return torch.where(unbounded, math.inf, (inside + outside) / 2)
