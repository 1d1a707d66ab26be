"""Intervals for quantile regression by inverting the regression rank-score test (Koenker, 1994).

R's ``summary.rq`` default below 1,001 rows (``se = "rank"``, ``iid = TRUE``). For the weight θ_j, the test of
θ_j = b fits the τ-quantile regression of y - b·x_j on the other columns Z and takes its regression rank scores
â (Gutenbrunner and Jurečková, 1992: the dual solution, 0 <= â_i <= 1, â_i = 1 above the fit and 0 below):

    T(b) = x̃ᵀ(â - (1 - τ)) / √(τ(1 - τ)·x̃ᵀx̃),   x̃ = x_j minus its least-squares fit on Z,

which is asymptotically standard normal when θ_j = b and the errors are iid. On small tables with many columns the
normal is not T's law: referred to it, the intervals covered 92.6-93.6% where a parameter comes every three rows,
and referred to R's Student's t on n - p (``tcrit = TRUE``) 96.6-97.2% on 16 rows and 3 parameters
(``benchmarks/coverage.py --part wide``). So T's law is drawn. T(θ_j) is a pivot when the errors are iid normal:
the rank scores do not change when Z·γ is added to the target or the target is scaled, so T depends only on the
errors over their scale, whose law is known. B draws of T from normal errors whose τ-quantile is 0 (times each
row's case weight, which multiplies the rows) set the cutoff: the test rejects where |T| exceeds the k-th smallest
of the B |T|'s, k = ⌈(1 - α)(B + 1)⌉, and the interval is where it does not. This is a Monte Carlo test (Dwass,
1957; Dufour, 2006): its level is exactly α for normal errors at any n and B (α(B + 1) whole), and for other iid
errors that of a statistic asymptotically free of their law. Its p-value of θ_j = 0 is the same test's, (1 +
#{draws with |T| >= |T(0)|}) / (B + 1), at least 1 / (B + 1), and below alpha exactly when 0 is outside the
interval (up to the search's precision, when 0 is that near an end). B = ⌈10/α⌉ - 1 (199 at 95%: ten draws beyond
the cutoff); the cutoff is itself drawn: on a large table, where T's law is near the normal, it varies from one
seed to another around 1.96 with a standard deviation of about 0.13, and the seed fixes it. The draws are B
interior points a parameter: past ``MONTE_CARLO_NUMBERS`` (or with ``monte_carlo=False``) T is referred to the
normal, and the name says so.

T falls as b grows and is a step function of b: each end is found by a search that tries up to 15 points a
round (a round is one batched interior point for every end at once), to 1/500 of the sandwich's half-width (4e-3
standard errors at 95%). R follows the steps exactly by parametric programming and interpolates between the two
either side of the cutoff: its ends differ from these by less than a step. An end is infinite when |T| stays
within the cutoff however far b goes (about one interval in fifty on 16 rows).
"""

from __future__ import annotations

import math

import torch
from scipy import stats as scipy_stats
from torch import Tensor

from lit_linreg.stats.optimum import batched_frisch_newton
from lit_linreg.stats.rows import DesignRows

# R's summary.rq: rank inversion for fewer than 1,001 rows, the nid sandwich from there (its cost grows as n·p²
# an LP, and the sandwich's large-sample approximation has become good).
RANK_TEST_MAX_ROWS = 1000
RANK_TEST_NAME = (
    "inversion of the rank-score test for iid errors, normal cutoff (Koenker 1994; R's summary.rq(se = 'rank') "
    "uses Student's t), with the p-values from the same test"
)
MONTE_CARLO_NAME = (
    "inversion of the rank-score test for iid errors (Koenker 1994; R's summary.rq(se = 'rank')), its cutoff and "
    "p-values a Monte Carlo test's under normal errors (Dufour 2006), {draws} draws"
)
# The draws' interior points hold B x parameters x n x (p - 1) numbers: 5e6 at 64 rows and 21 parameters, 2e6 for
# the tutorial's 500 rows and 5, 8e7 at 1,000 rows and 20. Past this, the normal cutoff: close where parameters
# are few for the rows (95.0% at 200 rows and 5), narrow where they are not.
MONTE_CARLO_NUMBERS = 10_000_000


def monte_carlo_draws(alpha: float) -> int:
    """B for a test at level alpha: ten draws beyond the cutoff, and α(B + 1) whole where 10/α is."""
    return math.ceil(10 / alpha - 1e-9) - 1


def null_errors(n: int, draws: int, seed: int) -> Tensor:
    """The (draws, n) standard normal errors the Monte Carlo test's draws of T are made from."""
    return torch.randn(draws, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def rank_test_intervals(
    rows: DesignRows,
    jacobian: Tensor,
    offset: Tensor,
    theta: Tensor,
    std_error: Tensor,
    tau: float,
    alpha: float,
    monte_carlo: bool = True,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, str]:
    """(lower, upper, p-value of 0, the method's name) for each fitted parameter θ = J·β + c in the table's units
    (a column left out gets NaN), searched from the estimates ``theta`` in steps set by ``std_error`` (any
    positive scale); ``monte_carlo`` draws the cutoff, ``seed`` fixing the draws."""
    fitted = jacobian.abs().sum(1) > 0
    # The design in the table's units: D·β = D·J⁻¹(θ - c), so the target moves by D·J⁻¹·c.
    to_table = torch.linalg.inv(jacobian[fitted])
    design = rows.matrix() @ to_table
    target = rows.t + design @ offset[fitted]
    tests = [_Test(design, target, j, tau) for j in range(design.shape[1])]
    draws = monte_carlo_draws(alpha)
    n, p = design.shape
    drawn = monte_carlo and draws * p * n * (p - 1) <= MONTE_CARLO_NUMBERS
    if drawn:
        # Errors whose τ-quantile is 0, as the model's are: the bias's test has no constant among the other
        # columns to absorb a shift (each weight's test has the bias there).
        errors = null_errors(n, draws, seed) - float(scipy_stats.norm.ppf(tau))
        if rows.scale is not None:
            errors = errors * rows.scale
        null = _null_statistics(tests, errors).abs()  # (tests, draws)
        cutoff = null.sort(1).values[:, math.ceil((1 - alpha) * (draws + 1) - 1e-9) - 1]
        name = MONTE_CARLO_NAME.format(draws=draws)
    else:
        cutoff = torch.full((p,), float(scipy_stats.norm.ppf(1 - alpha / 2)), dtype=torch.float64)
        name = RANK_TEST_NAME + (" (Monte Carlo's draws skipped: too many rows x columns²)" if monte_carlo else "")
    estimates, spread = theta[fitted], std_error[fitted]
    # Both ends of every interval in one search: each round is one batched interior point.
    ones = torch.ones(p, dtype=torch.float64)
    ends, at_zero = _boundary(
        tests + tests, estimates.repeat(2), spread.repeat(2), cutoff.repeat(2), torch.cat([ones, -ones])
    )
    upper, lower = ends[:p], ends[p:]
    if drawn:
        p_value = (1 + (null >= at_zero[:p, None].abs()).sum(1)).double() / (draws + 1)
    else:
        p_value = torch.from_numpy(2 * scipy_stats.norm.sf(at_zero[:p].abs().numpy()))
    out = [torch.full((len(fitted),), math.nan, dtype=torch.float64) for _ in range(3)]
    for full, part in zip(out, (lower, upper, p_value), strict=True):
        full[fitted] = part
    return out[0], out[1], out[2], name


class _Test:
    """The rank-score test of θ_j = b for one parameter j of ``design`` (at least one other column).

    The rank scores depend on the other columns Z only through their span, and adding Z·γ to the target moves the
    LP's objective by a constant (Zᵀâ is fixed): so Z is replaced by an orthonormal basis Q of it, and the target
    and x_j by what is left of them after Q (x_j's remainder is the x̃ of T). The interior point then works on
    centred, unit-scale numbers whatever the table's offsets (a column at 1e6 ± 1 cost the raw form 5 times the
    search's precision).
    """

    def __init__(self, design: Tensor, target: Tensor, j: int, tau: float) -> None:
        others = torch.cat([design[:, :j], design[:, j + 1 :]], 1)
        self.others, _ = torch.linalg.qr(others)
        self.target = target - self.others @ (self.others.T @ target)
        self.residual = design[:, j] - self.others @ (self.others.T @ design[:, j])  # x̃
        self.tau = tau
        self.scale = math.sqrt(tau * (1 - tau) * float(self.residual @ self.residual))


# The (tests x points, n, p - 1) designs of one batched interior point stay within this many numbers (a 1,000-row,
# 300-column table would otherwise hold 2.9 GB of copies): more tests are solved a chunk at a time.
CHUNK_ELEMENTS = 4_000_000


def _statistics(tests: list[_Test], at: Tensor) -> Tensor:
    """T_j(b) for each test j (a row of ``at``) at each of its points b (the row's columns), in batched interior
    points."""
    tau = tests[0].tau
    n, q = tests[0].others.shape
    per_chunk = max(1, CHUNK_ELEMENTS // (at.shape[1] * n * q))
    scores = []
    for start in range(0, len(tests), per_chunk):
        chunk, points = tests[start : start + per_chunk], at[start : start + per_chunk]
        columns = torch.stack([t.residual for t in chunk])[:, None, :]
        targets = (torch.stack([t.target for t in chunk])[:, None, :] - points[:, :, None] * columns).flatten(0, 1)
        designs = torch.stack([t.others for t in chunk]).repeat_interleave(points.shape[1], 0)
        scores.append(batched_frisch_newton(designs, targets, tau, tolerance=1e-9)[1].view(*points.shape, n))
    residuals = torch.stack([t.residual for t in tests])[:, None, :]
    scales = torch.tensor([t.scale for t in tests], dtype=torch.float64)[:, None]
    return (residuals * (torch.cat(scores) - (1 - tau))).sum(2) / scales


def _null_statistics(tests: list[_Test], errors: Tensor) -> Tensor:
    """T_j for each test j (a row) with each row of ``errors`` (draws, n) as the target: its draws when θ_j holds
    (the target's part in the span of the other columns does not move the rank scores, so only the errors do).
    One batched interior point a test, all its draws on the one design."""
    tau = tests[0].tau
    statistics = []
    for test in tests:
        targets = errors - (errors @ test.others) @ test.others.T
        scores = batched_frisch_newton(test.others, targets, tau, tolerance=1e-9)[1]
        statistics.append((scores - (1 - tau)) @ test.residual / test.scale)
    return torch.stack(statistics)


# A round is one batched interior point over every end still open, K points each. Its cost is a fixed ~25
# iterations of small-tensor overhead plus ~2 ns an element of the (ends x K, n) arrays: on small tables K = 15
# points cost little more than one and cut a bracket 16-fold (4 times fewer rounds than halving); on large ones
# halving does the least arithmetic. K is chosen so the arrays stay about the overhead's size.
BATCH_ELEMENTS = 8000
MAX_POINTS = 15


def _boundary(
    tests: list[_Test], theta: Tensor, spread: Tensor, cutoff: Tensor, direction: Tensor
) -> tuple[Tensor, Tensor]:
    """(each test's interval end on its side ``direction`` (+1 upper, -1 lower), T at 0 for each test).

    The end is the last b, going out from the estimate, where |T(b)| <= the test's cutoff (±inf where it never
    leaves). T is monotone in b, so the points where the test rejects lie beyond those where it does not. T(0),
    the p-value's, rides along in the first round.
    """
    n = len(tests[0].target)
    points = max(1, min(MAX_POINTS, BATCH_ELEMENTS // (len(tests) * n)))
    fractions = torch.arange(1, points + 1, dtype=torch.float64) / points
    unit = direction * cutoff * spread.clamp(min=1e-12 * (1 + float(theta.abs().max())))  # the sandwich's reach
    inside, outside = theta.clone(), torch.full_like(theta, math.nan)
    found = torch.zeros(len(tests), dtype=torch.bool)
    # Out from the estimate until the test rejects, round r spanning (g_r, g_r+1] reaches of the sandwich's
    # interval, g = 0, 4, 8, 32, 256, ... (each 2^r times the last): 9 rounds reach 10^11.
    reach = 0.0
    for round_ in range(9):
        pending = (~found).nonzero().squeeze(1)
        if len(pending) == 0:
            break
        further = 4.0 if round_ == 0 else reach * (2.0**round_ - 1)
        tried = theta[pending, None] + unit[pending, None] * (reach + further * fractions)
        if round_ == 0:
            statistics = _statistics(tests, torch.cat([tried, torch.zeros(len(tests), 1, dtype=tried.dtype)], 1))
            statistics, at_zero = statistics[:, :-1], statistics[:, -1]
        else:
            statistics = _statistics([tests[i] for i in pending.tolist()], tried)
        inside, outside, found = _narrow(
            pending, tried, statistics.abs() > cutoff[pending, None], inside, outside, found
        )
        reach += further
    # Then cut each bracket [inside, outside] into points + 1 until it is within 1/500 of the sandwich's reach
    # (4e-3 standard errors at 95%), where T's steps are ~1/√n of it.
    precision = 2e-3 * unit.abs()
    within = torch.arange(1, points + 1, dtype=torch.float64) / (points + 1)
    while True:
        pending = (found & ((outside - inside).abs() > precision)).nonzero().squeeze(1)
        if len(pending) == 0:
            break
        tried = inside[pending, None] + (outside - inside)[pending, None] * within
        statistics = _statistics([tests[i] for i in pending.tolist()], tried)
        inside, outside, found = _narrow(
            pending, tried, statistics.abs() > cutoff[pending, None], inside, outside, found
        )
    return torch.where(found, (inside + outside) / 2, direction * math.inf), at_zero


def _narrow(
    pending: Tensor, points: Tensor, rejects: Tensor, inside: Tensor, outside: Tensor, found: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The tests ``pending`` tried at ``points`` (ordered outwards, one row each): the last point not rejected
    becomes the inside end and the first rejected the outside one."""
    first = torch.where(rejects.any(1), rejects.double().argmax(1), points.shape[1])  # none rejected: past the end
    inside, outside, found = inside.clone(), outside.clone(), found.clone()
    rows = torch.arange(len(pending))
    accepted = first > 0
    inside[pending[accepted]] = points[rows[accepted], first[accepted] - 1]
    rejected = first < points.shape[1]
    outside[pending[rejected]] = points[rows[rejected], first[rejected]]
    found[pending[rejected]] = True
    return inside, outside, found
