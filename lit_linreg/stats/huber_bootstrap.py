"""Huber's intervals by inverting the wild restricted bootstrap test of its sandwich t, every draw refitted.

The test of θ_j = b (θ = J·β + c, a coefficient in the table's units) is least squares' (``stats.wild_bootstrap``:
Davidson and Flachaire, 2008) with Huber's M-estimator in the place of least squares. Its statistic is the
HC2-type sandwich's t, t(b) = (θ̂_j - b) / se_j (``stats.inference.m_estimator_covariance``). The restricted fit
is Huber's M-estimate, its MAD scale estimated with it, of the target under θ_j = b; its residuals ũ(b) over
√(1 - h̃_i) (h̃ the restricted design's least-squares leverages), times a weight v_i of mean 0 and variance 1, are
added to its fit to make each draw's target; each draw is refitted by Huber's M-estimate with its own MAD scale,
and its own sandwich t about b is taken. The test rejects where |t(b)| is reached by at most α(B + 1) - 1 of the
B draws' |t*|; the interval is where it does not, and the p-value of θ_j = 0 is the same test's, (1 + #{|t*| >=
|t(0)|}) / (B + 1). The weights are Webb's six points (``stats.wild_bootstrap.webb_weights``), the same for every
coefficient and every b, so that the draws' cutoff moves continuously with b. B = ⌈10/α⌉ - 1 (199 at 95%).

Why: the sandwich's t with Bell and McCaffrey's degrees of freedom (Huber's intervals elsewhere) covered 94.3-96.7%
on 16- to 64-row designs with a parameter per 3 to 10 rows, above 96% on four of them (64 rows with 13 and 21
parameters, 32 with 11, t(3) errors); this test covered 94.2-95.7% on the hardest seven, all within 94-96%
(``benchmarks/sandwich_candidates.py --huber-refits``, 999 draws). Its linearised form (the draws not refitted:
Kline and Santos's score bootstrap) fell below 94% on 16 rows. It is Huber's default (``analyse(...,
refitted_bootstrap=True)``) on tables of at most ``ROWS_PER_PARAMETER`` rows a parameter, within
``HUBER_BOOTSTRAP_WORK``: with 199 draws it covered 94.1-95.5% on the ten such rows (five designs, two noises) of
``benchmarks/coverage.py``'s wide table, where the sandwich's t covered 94.3-96.7%.

The draws are not linear in b, as least squares' are: each value of b tried costs B refits. Each end is the first
value the scan finds rejected, going out from the estimate from 3/4 of Student's t's reach in steps of a quarter
of it (``SCAN_POINTS`` a round, the steps doubling after the first round); within the step before it, the end is
a root of g(d) = d - c(d), d the distance from the estimate in standard errors and c(d) the draws' cutoff there,
and each round tries a pair ``PRECISION`` apart about the secant's root with the step's thirds (a crossing found
on the thirds narrows it threefold, one between the pair ends it). Every end still open is one batched refit a
round: about 8 rounds, 30-50 values a coefficient. Where the draws' cutoff rises with b as fast as |t| (the bias
on 16 rows, say), the test can accept again further out: the interval is the stretch about the estimate (and a
stretch of rejection narrower than a step can be passed over; the p-values are the test's at 0 all the same).
"""

from __future__ import annotations

import math

import torch
from scipy import stats as scipy_stats
from torch import Tensor

from lit_linreg.losses import HuberLoss
from lit_linreg.stats import huber_fixed_point
from lit_linreg.stats.huber_fixed_point import EXACT_FIT, m_estimates, outer_products
from lit_linreg.stats.rank_test import monte_carlo_draws
from lit_linreg.stats.rows import DesignRows
from lit_linreg.stats.wild_bootstrap import HIGH, webb_weights

HUBER_BOOTSTRAP_NAME = (
    "inversion of the wild restricted bootstrap test of the sandwich's t, each draw refitted by Huber's M-estimate "
    "(Davidson and Flachaire 2008; Webb's six-point weights, {draws} draws), with the p-values from the same test"
)
# Where the test is used: tables of at most this many rows a parameter, the designs it was measured on (2.9 to 4.9
# rows a parameter) and where the sandwich's t was conservative. With more rows a parameter (the tutorial's 100),
# the sandwich's t on Bell and McCaffrey's degrees of freedom covered 94.6-95.6% (benchmarks/coverage.py).
ROWS_PER_PARAMETER = 5
# A value of b costs B refits of n·p² multiply-adds an IRLS step, for each of p coefficients: n·p³·B. Past this
# many, the sandwich's t on Bell and McCaffrey's degrees of freedom. The analyses of benchmarks/coverage.py's wide
# designs took, on one core here (its tallies' seconds a dataset), 1.3-1.5 s at 16 rows and 5 parameters (4e5),
# 6.5-6.9 s at 32 and 11 (8.5e6), 11-12 s at 64 and 13 (2.8e7) and 28-30 s at 64 and 21 (1.18e8): about half a minute
# of one core at most, for intervals that cover where the t's are conservative.
HUBER_BOOTSTRAP_WORK = 120_000_000
# The refits of one batch hold (targets x n x p) numbers at most this many at a time.
CHUNK_ELEMENTS = 1 << 22
# Each end to this many standard errors: the pair that certifies it lies this far apart.
PRECISION = 1e-3
SCAN_POINTS = 4  # a round of the outward scan
MAX_REACH = 1e6  # standard errors: an end not found this far out is infinite


def huber_bootstrap_wanted(n: int, p: int) -> bool:
    """Whether a table of n rows and p parameters has at most ``ROWS_PER_PARAMETER`` rows a parameter, where the
    sandwich's t was measured to be conservative and this test was not, and a column besides the intercept (the
    intercept alone leaves its test no restricted fit; R's rank test asks the same)."""
    return p > 1 and n <= ROWS_PER_PARAMETER * p


def huber_refits_affordable(n: int, p: int, alpha: float) -> bool:
    """Whether the refits of an n x p table at level alpha, n·p³·B multiply-adds, are within
    ``HUBER_BOOTSTRAP_WORK``."""
    return n * p**3 * monte_carlo_draws(alpha) <= HUBER_BOOTSTRAP_WORK


def huber_bootstrap_obstacle(
    rows: DesignRows, loss: HuberLoss, jacobian: Tensor, std_error: Tensor, alpha: float
) -> str | None:
    """Why the test cannot be run on this fit, or None where it can: the rows not in memory, the refits past
    ``HUBER_BOOTSTRAP_WORK``, or nothing to scale by (a MAD scale of 0 to rounding, ``EXACT_FIT`` of the target's
    standard deviation, more than half the rows fitted exactly; or a standard error of 0), where the draws' t are
    rounding errors over rounding errors."""
    if rows.matrix() is None:
        return "the rows are not in memory"
    if not huber_refits_affordable(rows.n, rows.p, alpha):
        return "too many rows x columns³"
    fitted = std_error[jacobian.abs().sum(1) > 0]
    if not loss.scale > EXACT_FIT * float(rows.t.std()) or not bool(((fitted > 0) & torch.isfinite(fitted)).all()):
        return "more than half the rows fitted exactly (a MAD scale of 0)"
    return None


def huber_bootstrap_intervals(
    rows: DesignRows,
    loss: HuberLoss,
    jacobian: Tensor,
    offset: Tensor,
    theta: Tensor,
    std_error: Tensor,
    alpha: float,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, str]:
    """(lower, upper, p-value of 0, the method's name) for each coefficient θ = J·β + c (NaN for a column left
    out): ``theta`` are Huber's estimates on ``rows`` and ``std_error`` their sandwich's standard errors, ``loss``
    Huber's at the fitted scale (its k is used); ``seed`` fixes the draws."""
    draws = monte_carlo_draws(alpha)
    fitted = jacobian.abs().sum(1) > 0
    test = _RefittedTest(rows, loss.k, jacobian[fitted], offset[fitted], theta[fitted], std_error[fitted], draws, seed)
    rejects = math.floor(alpha * (draws + 1) + 1e-9)  # rejected where 1 + #{|t*| >= |t|} <= α(B + 1)
    lower, upper, p_value = test.invert(rejects, float(scipy_stats.t.ppf(1 - alpha / 2, rows.n - rows.p)))
    out = [torch.full((len(fitted),), math.nan, dtype=torch.float64) for _ in range(3)]
    for full, part in zip(out, (lower, upper, p_value), strict=True):
        full[fitted] = part
    name = HUBER_BOOTSTRAP_NAME.format(draws=draws)
    # Rare, and said: refits short of the fixed point (their t is their last step's), and refits with a MAD scale of
    # 0 (most of a draw's rows fitted exactly: no t, taken as infinite, which errs towards accepting).
    steps = huber_fixed_point.MAX_ITERATIONS
    caveats = [f"{test.unsettled:,} short of the fixed point after {steps} steps"] if test.unsettled else []
    caveats += [f"{test.degenerate:,} with a MAD scale of 0"] if test.degenerate else []
    if caveats:
        name += f" ({' and '.join(caveats)}, of {test.fits:,} refits)"
    return out[0], out[1], out[2], name


class _RefittedTest:
    """The test of g_jᵀβ + c_j = b for each contrast j (a row of ``contrasts``), at any values b."""

    def __init__(
        self,
        rows: DesignRows,
        k: float,
        contrasts: Tensor,
        offset: Tensor,
        theta: Tensor,
        std_error: Tensor,
        draws: int,
        seed: int,
    ) -> None:
        self.design, self.target, self.k = rows.matrix(), rows.t, k
        self.contrasts, self.offset, self.theta, self.std_error = contrasts, offset, theta, std_error
        self.v = webb_weights(rows.n, draws, seed)  # (B, n)
        q, r = torch.linalg.qr(self.design)
        a = q @ torch.linalg.solve_triangular(r.T, contrasts.T, upper=False)  # (n, m)
        # 1 - the restricted designs' leverages (least squares' h less the contrast's direction), and HC2's
        # rescaling of the restricted fits' residuals by its root.
        unleveraged = 1 - q.square().sum(1)[:, None] + a.square() / a.square().sum(0)
        self.rescale = torch.where(unleveraged > 1 - HIGH, unleveraged.clamp(min=1 - HIGH).rsqrt(), 0.0).T  # (m, n)
        # β = g·(b - c)/gᵀg + N·γ under the null, N an orthonormal basis of the contrast's complement.
        self.particular = contrasts / contrasts.square().sum(1, keepdim=True)
        complete, _ = torch.linalg.qr(contrasts[:, :, None], mode="complete")  # (m, p, p)
        self.restricted_designs = self.design @ complete[:, :, 1:]  # (m, n, p - 1)
        self.outer = outer_products(self.design)  # (n, p²)
        # The refits made, those m_estimates left short of the fixed point, and those with a MAD scale of 0.
        self.fits = self.unsettled = self.degenerate = 0

    def statistics(self, which: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """(|t(b)|, the draws' |t*| (points, B)) of the tests of contrast ``which[i]`` at ``values[i]``."""
        observed = (self.theta[which] - values).abs() / self.std_error[which]
        # The restricted fits, then every draw refitted, a chunk of points at a time.
        n, p = self.design.shape
        step = max(1, CHUNK_ELEMENTS // (len(self.v) * n * p))
        drawn = []
        for start in range(0, len(which), step):
            j, b = which[start : start + step], values[start : start + step]
            shift = self.design @ (self.particular[j] * (b - self.offset[j])[:, None]).T  # (n, points)
            gamma, scale, settled = m_estimates(self.restricted_designs[j], self.target - shift.T, self.k)
            self._count(settled, scale)
            # A restricted fit with a MAD scale of 0 leaves nothing to draw from: its draws' t are taken as infinite.
            statistic = torch.full((len(j), len(self.v)), math.inf, dtype=torch.float64)
            made = torch.isfinite(gamma).all(1)
            if made.any():
                statistic[made] = self._drawn(j[made], b[made], shift[:, made], gamma[made])
            drawn.append(statistic)
        return observed, torch.cat(drawn)

    def _drawn(self, which: Tensor, values: Tensor, shift: Tensor, gamma: Tensor) -> Tensor:
        """The draws' |t*| (points, B) about ``values`` from the restricted fits ``shift`` + Z·``gamma``."""
        fit = shift.T + (self.restricted_designs[which] @ gamma[:, :, None])[:, :, 0]  # (points, n)
        rescaled = (self.target - fit) * self.rescale[which]
        targets = (fit[:, None, :] + rescaled[:, None, :] * self.v).flatten(0, 1)  # (points x B, n)
        # Each draw refitted from least squares, as RLM and rlm start: with a MAD scale the fixed point need not be
        # unique (started from the fits at the values tried beside it, 141 of 85,000 draws at 32 x 11 reached
        # another one), and the test at b must be a function of b, not of the values tried before it.
        beta, scale, settled = m_estimates(self.design, targets, self.k, self.outer)
        self._count(settled, scale)
        draws = len(self.v)
        contrast = self.contrasts[which].repeat_interleave(draws, 0)
        estimate = (beta * contrast).sum(1) + self.offset[which].repeat_interleave(draws)
        deviation = estimate - values.repeat_interleave(draws)
        draw_error = sandwich_errors(self.design, targets, beta, scale, self.k, contrast, self.outer)
        statistic = torch.where(torch.isfinite(draw_error), deviation.abs() / draw_error, math.inf)
        return statistic.view(len(which), draws)

    def _count(self, settled: Tensor, scale: Tensor) -> None:
        degenerate = torch.isnan(scale)
        self.fits += len(settled)
        self.unsettled += int((~settled & ~degenerate).sum())
        self.degenerate += int(degenerate.sum())

    def invert(self, rejects: int, guess: float) -> tuple[Tensor, Tensor, Tensor]:
        """(lower, upper, p-value of 0) of each contrast: each end the first value the scan finds rejected, going
        out from 3/4 of ``guess`` standard errors in steps of a quarter of it, then found to PRECISION within the
        step before it (the module's docstring). A stretch of rejection narrower than a step can be passed over,
        and where the test accepts again further out, 0 can be outside the interval with a p-value above alpha."""
        m = len(self.theta)
        which = torch.arange(m).repeat(2)
        side = torch.cat([-torch.ones(m), torch.ones(m)]).double()
        se = self.std_error[which]
        p_value = self._p_values()
        # Out from 3/4 of the guess in steps of a quarter of it, SCAN_POINTS a round, until the test rejects.
        step = guess / 4
        inside, outside = torch.zeros(2 * m, dtype=torch.float64), torch.full((2 * m,), math.inf).double()
        inside_g, outside_g = (torch.full((2 * m,), math.nan).double() for _ in range(2))
        reach = guess / 2
        while True:
            pending = (~torch.isfinite(outside) & (inside < MAX_REACH)).nonzero().squeeze(1)
            if len(pending) == 0:
                break
            points = reach + step * torch.arange(1, SCAN_POINTS + 1).double()
            distance = points.repeat(len(pending), 1)
            g = self._g(which[pending], side[pending], se[pending], distance, rejects)
            self._narrow(pending, distance, g, inside, inside_g, outside, outside_g)
            reach, step = float(points[-1]), 2 * step  # the scan's steps double once past the first round
        # Then each bracket to PRECISION: a pair about the secant's root, and the bracket's thirds.
        while True:
            pending = (torch.isfinite(outside) & (outside - inside > PRECISION * (1 + 1e-9))).nonzero().squeeze(1)
            if len(pending) == 0:
                break
            lo, hi, lo_g, hi_g = inside[pending], outside[pending], inside_g[pending], outside_g[pending]
            secant = torch.where(torch.isfinite(lo_g), lo - lo_g * (hi - lo) / (hi_g - lo_g), (lo + hi) / 2)
            centre = secant.clamp(lo + PRECISION / 2, hi - PRECISION / 2)
            pair = centre[:, None] + torch.tensor([-PRECISION / 2, PRECISION / 2], dtype=torch.float64)
            thirds = lo[:, None] + (hi - lo)[:, None] * torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
            distance = torch.cat([pair, thirds], 1).sort(1).values
            g = self._g(which[pending], side[pending], se[pending], distance, rejects)
            self._narrow(pending, distance, g, inside, inside_g, outside, outside_g)
        ends = torch.where(torch.isfinite(outside), (inside + outside) / 2, math.inf) * se
        return self.theta - ends[:m], self.theta + ends[m:], p_value

    @staticmethod
    def _narrow(
        pending: Tensor,
        distance: Tensor,
        g: Tensor,
        inside: Tensor,
        inside_g: Tensor,
        outside: Tensor,
        outside_g: Tensor,
    ) -> None:
        """The ends ``pending`` tried at ``distance`` (ordered outwards, a row each, with g there): the first
        value rejected becomes the bracket's outer end, the value before it the inner one (in place)."""
        rejected = g > 0
        first = torch.where(rejected.any(1), rejected.double().argmax(1), distance.shape[1])
        rows = torch.arange(len(pending))
        accepted = first > 0
        last = (first - 1).clamp(min=0)
        inside[pending[accepted]] = distance[rows, last][accepted]
        inside_g[pending[accepted]] = g[rows, last][accepted]
        hit = first < distance.shape[1]
        at = first.clamp(max=distance.shape[1] - 1)
        outside[pending[hit]] = distance[rows, at][hit]
        outside_g[pending[hit]] = g[rows, at][hit]

    def _g(self, which: Tensor, side: Tensor, se: Tensor, distance: Tensor, rejects: int) -> Tensor:
        """g = d - c(d) of each test ``which[i]`` at each of its distances ``distance[i]`` (standard errors, on its
        ``side``): the test accepts where g <= 0."""
        tests = which.repeat_interleave(distance.shape[1])
        values = self.theta[tests] + ((side * se)[:, None] * distance).flatten()
        observed, drawn = self.statistics(tests, values)
        cutoff = drawn.topk(rejects, 1).values[:, -1]  # accepted where |t| <= the rejects-th largest |t*|
        return (observed - cutoff).view(distance.shape)

    def _p_values(self) -> Tensor:
        """(1 + #{|t*| >= |t(0)|}) / (B + 1) of each contrast: the test of θ_j = 0."""
        m = len(self.theta)
        observed, drawn = self.statistics(torch.arange(m), torch.zeros(m, dtype=torch.float64))
        return (1 + (drawn >= observed[:, None]).sum(1)).double() / (len(self.v) + 1)


def sandwich_errors(
    design: Tensor, targets: Tensor, beta: Tensor, scale: Tensor, k: float, contrasts: Tensor, outer: Tensor
) -> Tensor:
    """The HC2-type sandwich's standard error of cᵀβ for each fit (a row of ``beta``, with its target, scale and
    contrast c): √(Σ_i (d_iᵀB⁻¹c)² ψ_i²/(1 - h_i)), B = Σψ'_i d_i d_iᵀ, h_i = ψ'_i d_iᵀB⁻¹d_i, as
    ``stats.inference.m_estimator_covariance``. Infinite where B is singular (too few rows inside the threshold to
    span the design): the draw's t is then taken as infinite, exceeding any observed one, which errs towards
    accepting."""
    p = design.shape[1]
    residual = targets - beta @ design.T
    cut = k * scale[:, None]
    psi = torch.maximum(torch.minimum(residual, cut), -cut)
    slope = (residual.abs() <= cut).double()
    factor, info = torch.linalg.cholesky_ex((slope @ outer).view(-1, p, p))
    singular = info > 0
    factor[singular] = torch.eye(p, dtype=torch.float64)
    direction = torch.cholesky_solve(contrasts[:, :, None], factor)[:, :, 0]  # B⁻¹c
    whitened = torch.linalg.solve_triangular(factor, design.T.expand(len(beta), -1, -1), upper=False)  # L⁻¹dᵢ
    leverage = slope * whitened.square().sum(1)
    weight = torch.where(leverage < 1 - 1e-12, psi.square() / (1 - leverage).clamp(min=1e-12), 0.0)
    variance = ((direction @ design.T).square() * weight).sum(1)
    return torch.where(singular, math.inf, variance.sqrt())
