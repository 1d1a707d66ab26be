"""How sure: the covariance of the exact optimum, for each loss, robust by default and classical on request.

In the coordinates of ``DesignRows`` (n rows, p = kept columns + intercept, residuals r = t - D·β):

- **mse, robust**: HC2 (MacKinnon and White, 1985), (DᵀD)⁻¹ [Σ r_i²/(1-h_i) d_i d_iᵀ] (DᵀD)⁻¹ with h_i the
  leverages, unbiased under homoscedastic errors. Its intervals and p-values invert the wild restricted bootstrap
  test of its t (``stats.wild_bootstrap``): on 16- to 64-row designs with a parameter per 3 to 10 rows they
  covered 94.6-95.8%, where Student's t on Bell and McCaffrey's (2002) degrees of freedom (``bell_mccaffrey_df``,
  one per coefficient, as Imbens and Kolesár (2016) recommend; the default before) covered 95.2-97.0%, HC3 on
  n - p (R's ``sandwich::vcovHC`` default) 95.4-98.5% and HC2 on n - p 92.2-95.1% (benchmarks/coverage.py,
  benchmarks/sandwich_candidates.py). Past the draws' budget, or with the rows streamed from disk, Bell and
  McCaffrey's t.
  **classical**: s²(DᵀD)⁻¹, s² = Σr²/(n-p).
- **mae and quantile τ, robust**: Hendricks and Koenker's (1992) sandwich, R's ``summary.rq(se = "nid")``:
  τ(1-τ) H⁻¹ DᵀD H⁻¹ with H = Σ f_i d_i d_iᵀ and f_i = 2h / d_iᵀ(β(τ+h) - β(τ-h)) each row's density at its
  quantile, from the exact fits at τ ± h (Hall–Sheather h). On 16- to 64-row designs with a parameter per 3 to 10
  rows it covered 92.4-97.8% where Powell's kernel sandwich (Silverman's bandwidth, times n/(n-p), the default
  before) covered 86.7-95.6% (benchmarks/quantile_candidates.py). Where H is singular, Powell's, named so.
  **classical**: the iid sparsity estimate τ(1-τ)/f̂(0)² (DᵀD)⁻¹ with an Epanechnikov kernel and the
  Hall–Sheather bandwidth at τ, as statsmodels' ``QuantReg(vcov="iid")``.
- **huber, robust**: the M-estimator sandwich with HC2's leverage correction, B⁻¹MB⁻¹ with B = Σψ'(r_i) d_i d_iᵀ,
  M = Σψ(r_i)²/(1-h_i) d_i d_iᵀ and h_i = ψ'(r_i) d_iᵀB⁻¹d_i (for least squares, HC2 itself), its t with Bell
  and McCaffrey's degrees of freedom through the M-estimator's linearisation: 94.3-96.7% on those designs, where
  HC3's correction on n - p (the default before) covered 94.5-98.3% (benchmarks/sandwich_candidates.py). On
  tables of at most 5 rows a parameter, where that t was conservative, its intervals and p-values invert the
  wild restricted bootstrap test of its t with every draw refitted (``stats.huber_bootstrap``).
  **classical**: Huber's (1981) H1, K²·[Σψ²/(n-p)]/[(Σψ'/n)²]·(DᵀD)⁻¹, as statsmodels' ``RLM``.

With clusters (least squares): CR1, G/(G-1)·(n-1)/(n-p)·(DᵀD)⁻¹[Σ_g s_g s_gᵀ](DᵀD)⁻¹, s_g the cluster's score sum.

Test statistics are β/SE, with p-values and (1 - alpha) intervals from Student's t with n - p degrees of freedom
(G - 1 with G clusters, as statsmodels' ``use_t``; Bell and McCaffrey's, one a coefficient, with Huber's robust
errors), except where the intervals and p-values invert a test: least squares' robust ones the wild restricted
bootstrap's (``stats.wild_bootstrap``), quantiles' below 1,001 rows the rank-score test's (``stats.rank_test``),
and Huber's robust ones, on tables of at most 5 rows a parameter within the refits' budget, the same bootstrap's
with every draw refitted (``stats.huber_bootstrap``).
The bootstrap (optional) refits the exact optimum on rows drawn with replacement: percentile intervals.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from scipy import stats as scipy_stats
from torch import Tensor

from lit_linreg.losses import Loss
from lit_linreg.stats.rows import DesignRows

Covariance = Literal["robust", "classical"]


def least_squares_covariance(rows: DesignRows, beta: Tensor, kind: str) -> Tensor:
    """HC2, or s²(DᵀD)⁻¹ (``classical``): p x p, in the coordinates of ``rows`` (kept columns, then intercept)."""
    n, p = rows.n, rows.p
    gram_inverse = torch.linalg.inv(rows.gram())
    if kind == "classical":
        return _residual_sum(rows, beta, lambda r: r.square()) / (n - p) * gram_inverse
    meat = torch.zeros(p, p, dtype=torch.float64)
    for d, t in rows.blocks():
        r = t - d @ beta
        leverage = ((d @ gram_inverse) * d).sum(1)
        # A row with leverage 1 is fitted exactly (r = 0): it adds nothing, rather than 0/0.
        weight = torch.where(leverage < 1 - 1e-12, r.square() / (1 - leverage), torch.zeros_like(r))
        meat += (d * weight[:, None]).T @ d
    return gram_inverse @ meat @ gram_inverse


# Bell and McCaffrey's degrees of freedom cost about 3·n·m·p² for m contrasts of p parameters: above this many
# multiply-adds (a 1,000-row table with 100 columns is 3e9, about 1 s here), Student's t keeps n - p.
BELL_MCCAFFREY_MAX_WORK = 1e10
# Rows with a leverage above this (at most 2p of them) are summed pair by pair: in the trace form their weights
# 1/(1 - h) would be cancelled by terms as large, losing every digit as h nears 1.
HIGH_LEVERAGE = 0.5
# The (rows, m, p) temporary of a weighted Gram of m contrasts stays within this many numbers.
GRAM_ELEMENTS = 1 << 22


def bell_mccaffrey_df(rows: DesignRows, beta: Tensor, loss: Loss, contrasts: Tensor) -> Tensor | None:
    """Bell and McCaffrey's (2002) degrees of freedom of the HC2 sandwich's t for each contrast cᵀβ (a row of
    ``contrasts``), for least squares and, through its linearisation, an M-estimator: the Satterthwaite
    approximation of cᵀVc by a scaled χ² under homoscedastic errors (Imbens and Kolesár, 2016).

    With s_i = ψ'(r_i), B = Σ s_i d_i d_iᵀ, h_i = s_i d_iᵀB⁻¹d_i and w_i = d_iᵀB⁻¹c / √(1 - h_i), the estimate is
    cᵀVc = Σ w_i² ψ̂_i² with ψ̂ ≈ (I - P)ψ, P = S D B⁻¹Dᵀ; ν = (Σλ)² / Σλ², λ the eigenvalues of W N W with
    N = (I - P)(I - P)ᵀ (I - H for least squares). So Σλ = Σ u_i N_ii and Σλ² = Σ_ij u_i u_j N_ij² with u = w².
    Without n x n matrices, in whitened coordinates e_i = L⁻¹d_i (B = LLᵀ): F = EEᵀ, R = F² = E G Eᵀ with
    G = L⁻¹DᵀDL⁻ᵀ, N_ij = δ_ij - (s_i + s_j)F_ij + s_i s_j R_ij, and the sum over pairs of ordinary rows is a few
    traces of p x p matrices Ã_g = Σ g_i e_i e_iᵀ; pairs with a high-leverage row are summed one by one.
    NaN for a zero contrast; None past the budget.
    """
    m, p = contrasts.shape
    if 3 * rows.n * m * p * p > BELL_MCCAFFREY_MAX_WORK:
        return None
    factor = torch.linalg.cholesky(_bread(rows, beta, loss))

    def whiten(d: Tensor) -> Tensor:  # d L⁻ᵀ: the rows in coordinates where B is the identity
        return torch.linalg.solve_triangular(factor, d.T, upper=False).T

    g = whiten(whiten(rows.gram()).T)
    directions = torch.linalg.solve_triangular(factor, contrasts.T, upper=False)  # d_iᵀB⁻¹c = e_iᵀ(L⁻¹c)

    def parts(d: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(e, s, h, u, high) of a block of rows."""
        e, s = whiten(d), loss.psi_prime(d @ beta - t)
        h = s * e.square().sum(1)
        inside = h < 1 - 1e-12  # a row fitted exactly has a zero residual (ψ): it weighs nothing
        u = torch.where(inside[:, None], (e @ directions).square() / (1 - h[:, None]), 0.0)
        return e, s, h, u, inside & (h > HIGH_LEVERAGE)

    # The high-leverage rows, with their place in the table.
    found, start = [], 0
    for d, t in rows.blocks():
        e, s, h, u, high = parts(d, t)
        found.append((e[high], s[high], h[high], u[high], start + high.nonzero().squeeze(1)))
        start += len(d)
    e_high, s_high, h_high, u_high, at_high = (torch.cat(column) for column in zip(*found, strict=True))
    first, diagonal = torch.zeros(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    a_u, a_us, a_uss = (torch.zeros(m, p, p, dtype=torch.float64) for _ in range(3))
    cross = torch.zeros(len(at_high), m, dtype=torch.float64)  # Σ over ordinary rows j of u_j N_ij², high i
    others = torch.zeros(len(at_high), dtype=torch.float64)  # Σ_{k≠i} F_ik², high i
    start = 0
    for d, t in rows.blocks():
        e, s, h, u, high = parts(d, t)
        u = u * (~high)[:, None]  # ordinary rows only: the high ones are added below
        f, r = e.square().sum(1), ((e @ g) * e).sum(1)
        n_ii = (1 - 2 * s * f + s.square() * r)[:, None]
        first += (u * n_ii).sum(0)
        diagonal += (u.square() * (2 * n_ii - 1)).sum(0)  # Σ u_i²(1 + 2 O_ii), O = N - I; Σ u_i² O_ii² below
        a_u += _weighted_grams(e, u)
        a_us += _weighted_grams(e, u * s[:, None])
        a_uss += _weighted_grams(e, u * s.square()[:, None])
        if len(at_high):
            f_pair, r_pair = e @ e_high.T, (e @ g) @ e_high.T
            n_pair = -(s[:, None] + s_high) * f_pair + s[:, None] * s_high * r_pair  # off the diagonal (j ≠ i)
            cross += n_pair.square().T @ u
            itself = (start + torch.arange(len(d)))[:, None] == at_high  # F_ii, left out of Σ_{k≠i}
            others += torch.where(itself, 0.0, f_pair.square()).sum(0)
        start += len(d)

    def trace(first: Tensor, second: Tensor) -> Tensor:  # tr(first · second), for each contrast
        return (first * second.transpose(1, 2)).sum((1, 2))

    # Σ over pairs of ordinary rows of u_i u_j O_ij², O_ij = -(s_i + s_j)F_ij + s_i s_j R_ij, term by term.
    ordinary_pairs = (
        2 * trace(a_uss, a_u)
        + 2 * trace(a_us, a_us)
        - 2 * trace(a_uss, a_us @ g)
        - 2 * trace(a_us, a_uss @ g)
        + trace(a_uss @ g, a_uss @ g)
    )
    # Pairs of high-leverage rows, their own N_ii as the sum of squares it is: (1 - h_i)² + s_i² Σ_{k≠i} F_ik².
    n_high = -(s_high[:, None] + s_high) * (e_high @ e_high.T) + s_high[:, None] * s_high * (e_high @ g @ e_high.T)
    n_high.diagonal().copy_((1 - h_high).square() + s_high.square() * others)
    first += (u_high * n_high.diagonal()[:, None]).sum(0)
    high_pairs = ((n_high.square() @ u_high) * u_high).sum(0) + 2 * (cross * u_high).sum(0)
    return first.square() / (diagonal + ordinary_pairs + high_pairs)


def _bread(rows: DesignRows, beta: Tensor, loss: Loss) -> Tensor:
    """B = Σ ψ'(r_i) d_i d_iᵀ: the M-estimator sandwich's bread (2DᵀD for least squares)."""
    bread = torch.zeros(rows.p, rows.p, dtype=torch.float64)
    for d, t in rows.blocks():
        bread += (d * loss.psi_prime(d @ beta - t)[:, None]).T @ d
    return bread


def _weighted_grams(e: Tensor, weights: Tensor) -> Tensor:
    """Σ_i w_ik e_i e_iᵀ for each column k of ``weights``: (m, p, p), a slice of the rows at a time."""
    m, p = weights.shape[1], e.shape[1]
    step = max(1, GRAM_ELEMENTS // (m * p))
    grams = torch.zeros(m, p, p, dtype=torch.float64)
    for start in range(0, len(e), step):
        piece = slice(start, start + step)
        grams += torch.einsum("ik,ij,il->kjl", weights[piece], e[piece], e[piece])
    return grams


def cluster_robust_covariance(rows: DesignRows, beta: Tensor, clusters: Tensor, groups: int) -> Tensor:
    """CR1, Liang and Zeger's (1986) sandwich with statsmodels' and R's ``vcovCL`` small-sample factor:
    G/(G-1) · (n-1)/(n-p) · (DᵀD)⁻¹ [Σ_g s_g s_gᵀ] (DᵀD)⁻¹ with s_g = Σ_{i in g} r_i d_i, G clusters."""
    n, p = rows.n, rows.p
    gram_inverse = torch.linalg.inv(rows.gram())
    scores = torch.zeros(groups, p, dtype=torch.float64)
    start = 0
    for d, t in rows.blocks():
        scores.index_add_(0, clusters[start : start + len(d)], d * (t - d @ beta)[:, None])
        start += len(d)
    factor = groups / (groups - 1) * (n - 1) / (n - p)
    return factor * gram_inverse @ (scores.T @ scores) @ gram_inverse


def quantile_covariance(rows: DesignRows, beta: Tensor, kind: str, tau: float) -> tuple[Tensor, str]:
    """(the covariance, its name) of the τ-quantile regression: Hendricks and Koenker's sandwich, or the iid
    sparsity estimate (``classical``)."""
    gram_inverse = torch.linalg.inv(rows.gram())
    residual = rows.residuals(beta)
    if kind == "classical":
        bandwidth = _hall_sheather_bandwidth(residual, tau)
        epanechnikov = (0.75 * (1 - (residual / bandwidth).square())).clamp(min=0)
        density = float(epanechnikov.mean()) / bandwidth
        name = "iid sparsity (Epanechnikov kernel, Hall-Sheather bandwidth)"
        return tau * (1 - tau) / density**2 * gram_inverse, name
    densities = _local_densities(rows, tau)
    factor, info = torch.linalg.cholesky_ex(rows.gram(densities))
    if int(info) == 0:
        h_inverse = torch.cholesky_inverse(factor)
        name = "Hendricks-Koenker sandwich (local densities from the fits at τ ± h, Hall-Sheather h)"
        return tau * (1 - tau) * h_inverse @ rows.gram() @ h_inverse, name
    # Too few rows with a positive local density to span the design (none of 400 tables of 16 to 64 rows with a
    # parameter per 3 to 6 rows, but possible): Powell's kernel sandwich, which always has one.
    name = (
        "Powell kernel sandwich (Gaussian kernel, Silverman bandwidth, n/(n-p)): the Hendricks-Koenker one was singular"
    )
    return powell_covariance(rows, residual, tau), name


def powell_covariance(rows: DesignRows, residual: Tensor, tau: float) -> Tensor:
    """Powell's (1991) kernel sandwich τ(1-τ) H⁻¹DᵀDH⁻¹, H = Σ φ(r_i/h)/h d_i d_iᵀ with Silverman's bandwidth,
    times n/(n-p) for the p rows the exact optimum interpolates (r = 0, the kernel's peak)."""
    bandwidth = 0.9 * _spread(residual) * len(residual) ** (-1 / 5)
    gaussian = torch.exp(-0.5 * (residual / bandwidth).square()) / (math.sqrt(2 * math.pi) * bandwidth)
    h_inverse = torch.linalg.inv(rows.gram(gaussian))
    return rows.n / (rows.n - rows.p) * tau * (1 - tau) * h_inverse @ rows.gram() @ h_inverse


def _local_densities(rows: DesignRows, tau: float) -> Tensor:
    """f_i = 2h / d_iᵀ(β(τ + h) - β(τ - h)), each row's conditional density at its τ-quantile as a difference
    quotient of the fits at τ ± h (Hendricks and Koenker, 1992; R's ``summary.rq(se = "nid")``), with R's
    Hall-Sheather h (halved until τ ± h is inside (0, 1)); a non-positive difference counts as density 0."""
    from lit_linreg.stats.optimum import quantile_regression

    h = hall_sheather(rows.n, tau)
    while tau - h <= 0 or tau + h >= 1:
        h /= 2
    above, _ = quantile_regression(rows, tau + h)
    below, _ = quantile_regression(rows, tau - h)
    spread = rows.matvec(above - below)
    return (2 * h / (spread - DENSITY_EPS)).clamp(min=0)


# R's eps = .Machine$double.eps^(2/3): a difference this small (here in standard deviations of the target) is 0.
DENSITY_EPS = 2.220446049250313e-16 ** (2 / 3)


def m_estimator_covariance(rows: DesignRows, beta: Tensor, kind: str, loss: Loss) -> Tensor:
    """The M-estimator sandwich, or Huber's H1 (``classical``), of a loss with a ψ' (Huber's)."""
    n, p = rows.n, rows.p
    # Residuals measured as prediction - target, the sign convention of the losses' psi.
    if kind == "classical":
        sums = torch.zeros(3, dtype=torch.float64)
        for d, t in rows.blocks():
            r = d @ beta - t
            slope = loss.psi_prime(r)
            sums += torch.stack([loss.psi(r).square().sum(), slope.sum(), slope.square().sum()])
        psi_squares, slopes, slope_squares = sums.tolist()
        mean_slope = slopes / n
        k = 1 + p / n * (slope_squares / n - mean_slope**2) / mean_slope**2
        return k**2 * (psi_squares / (n - p)) / mean_slope**2 * torch.linalg.inv(rows.gram())
    bread_inverse = torch.linalg.inv(_bread(rows, beta, loss))
    # HC2's leverage correction, carried over to the M-estimator: each row's ψ² over 1 - h_i, with h_i its
    # leverage in the ψ'-weighted design (least squares: exactly HC2), and Bell and McCaffrey's degrees of
    # freedom (``bell_mccaffrey_df``). The plain sandwich on n - p covered 89-90% on 16-row designs with 3 to 5
    # parameters (benchmarks/coverage.py --part wide); HC3's correction on n - p 94.5-98.3% on 16 to 64 rows.
    # (Under the linearisation ``bell_mccaffrey_df`` uses, E ψ̂_i² is proportional to N_ii >= 1 - h_i when some
    # rows pass the threshold: dividing by 1 - h_i corrects a little more than that. Dividing by N_ii instead,
    # benchmarks/sandwich_candidates.py's HC2N-BM, covered 93.2-95.8% against this one's 94.3-96.7%: narrower,
    # its misses below 95%. Bell and McCaffrey's ν with ψ's fourth cumulant in place of the normal's, HC2-BMk there,
    # is larger, as Huber's clipped ψ is flatter than normal: 91.5-95.6%, below 94% on every 16-row design.)
    meat = torch.zeros(p, p, dtype=torch.float64)
    for d, t in rows.blocks():
        r = d @ beta - t
        leverage = loss.psi_prime(r) * ((d @ bread_inverse) * d).sum(1)
        # A row with leverage 1 is fitted exactly (ψ = 0): it adds nothing, rather than 0/0.
        weight = torch.where(leverage < 1 - 1e-12, loss.psi(r).square() / (1 - leverage), 0.0)
        meat += (d * weight[:, None]).T @ d
    return bread_inverse @ meat @ bread_inverse


def _residual_sum(rows: DesignRows, beta: Tensor, fn) -> float:
    return sum(float(fn(t - d @ beta).sum()) for d, t in rows.blocks())


def hall_sheather(n: int, tau: float, alpha: float = 0.05) -> float:
    """Hall and Sheather's (1988) bandwidth, in probability, at the τ-quantile (R's ``bandwidth.rq``)."""
    z, q = scipy_stats.norm.ppf(1 - alpha / 2), scipy_stats.norm.ppf(tau)
    curvature = 1.5 * scipy_stats.norm.pdf(q) ** 2 / (2 * q**2 + 1)
    return n ** (-1 / 3) * z ** (2 / 3) * curvature ** (1 / 3)


def _hall_sheather_bandwidth(residual: Tensor, tau: float) -> float:
    """The Hall–Sheather bandwidth on the residuals' scale, min(sd, IQR/1.34), as statsmodels' ``QuantReg``."""
    hs = min(hall_sheather(len(residual), tau), 0.98 * min(tau, 1 - tau))  # tiny n: keep τ ± hs inside (0, 1)
    width = float(scipy_stats.norm.ppf(tau + hs) - scipy_stats.norm.ppf(tau - hs))
    return width * _spread(residual)


def _spread(residual: Tensor) -> float:
    """min(sd, IQR/1.34): a scale of the residuals that a few outliers cannot inflate."""
    iqr = _quantile(residual, 0.75) - _quantile(residual, 0.25)
    return min(float(residual.std()), iqr / 1.34) if iqr > 0 else float(residual.std())


def _quantile(v: Tensor, q: float) -> float:
    """The q-quantile with linear interpolation (R's type 7, numpy's default), for any length."""
    position = q * (len(v) - 1)
    low, high = math.floor(position), math.ceil(position)
    a = float(v.kthvalue(low + 1).values)
    b = float(v.kthvalue(high + 1).values) if high != low else a
    return a + (b - a) * (position - low)


def t_statistics(
    estimate: Tensor, std_error: Tensor, df: int | Tensor, alpha: float = 0.05
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(t, two-sided p-value, lower, upper) with Student's t on ``df`` degrees of freedom (one for all, or one a
    coefficient), at level 1 - alpha."""
    t = estimate / std_error
    df = df.numpy() if isinstance(df, Tensor) else df
    p = torch.from_numpy(2 * scipy_stats.t.sf(t.abs().numpy(), df))
    half_width = torch.as_tensor(scipy_stats.t.ppf(1 - alpha / 2, df)) * std_error
    return t, p, estimate - half_width, estimate + half_width


def bootstrap_fits(rows: DesignRows, loss: Loss, resamples: int, seed: int, d: int) -> Tensor:
    """(resamples, d + 1): (w, b) in the table's units, refitted on rows drawn with replacement."""
    generator = torch.Generator().manual_seed(seed)
    design, target = rows.matrix(), rows.t
    fits = torch.empty(resamples, d + 1, dtype=torch.float64)
    jacobian, offset = rows.jacobian(d)
    for i in range(resamples):
        index = torch.randint(rows.n, (rows.n,), generator=generator)
        resample = DesignRows.from_matrix(design[index], target[index], rows)
        fits[i] = jacobian @ loss.exact_fit(resample).beta + offset
    return fits
