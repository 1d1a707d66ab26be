"""Coverage of candidate standard errors for median (and any quantile) regression on small wide designs.

    python -m benchmarks.quantile_candidates --datasets 300 --quantile 0.5

The study behind issue 17's item 1 (intervals that cover 94-96% from n = 16 with up to one parameter per three
rows): each candidate's Student t (n - p) intervals at 95% on the designs of ``benchmarks.coverage --part wide``.

- ``lit_linreg``: its standard errors (Hendricks and Koenker's sandwich, as ``R nid`` with R's bandwidth
  halving), whose Student t intervals are its default from 1,001 rows; below that its intervals invert the
  rank-score test (``lit_linreg.stats.rank_test``), which ``benchmarks.coverage --part wide`` measures;
- ``powell``: the default before (Powell's kernel sandwich, Silverman's bandwidth, times n/(n-p));
- ``iid``: lit_linreg's ``classical`` (statsmodels' ``QuantReg(vcov="iid")``), and that times n/(n-p);
- ``R iid``: R's ``summary.rq(se = "iid")``: the sparsity as the slope of a median regression of the h + 1
  smallest nonzero residuals, sorted, on their ranks over n - p (Hall–Sheather h), and that times n/(n-p);
- ``R nid``: R's ``summary.rq(se = "nid")`` (Hendricks and Koenker): local sparsities from the fits at τ ± h; a
  singular sandwich counts as an infinite interval.
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from benchmarks.coverage import WIDE, wide_dataset
from lit_linreg.stats.inference import hall_sheather, powell_covariance, quantile_covariance
from lit_linreg.stats.moments import Moments
from lit_linreg.stats.optimum import batched_frisch_newton, quantile_regression
from lit_linreg.stats.rows import DesignRows


def rows_of(x: np.ndarray, y: np.ndarray) -> DesignRows:
    xt, yt = torch.tensor(x), torch.tensor(y)
    return DesignRows(xt, yt, Moments.of(xt, yt), list(range(x.shape[1])))


def r_iid(design: np.ndarray, residual: np.ndarray, tau: float) -> np.ndarray:
    n, p = design.shape
    zero = int((np.abs(residual) < np.finfo(float).eps ** (2 / 3)).sum())
    h = max(p + 1, math.ceil(n * hall_sheather(n, tau)))
    ranks = np.arange(zero + 1, min(h + zero + 1, n) + 1)
    ordered = np.sort(residual[np.argsort(np.abs(residual))][ranks - 1])
    line = rows_of((ranks / (n - p))[:, None], ordered)
    sparsity = float(line.weights_to_original(quantile_regression(line, 0.5)[0], 1)[0][0])
    return sparsity**2 * tau * (1 - tau) * np.linalg.inv(design.T @ design)


def r_nid(x: np.ndarray, y: np.ndarray, design: np.ndarray, tau: float) -> np.ndarray:
    """R's "nid" sandwich, with h clamped to 0.98 min(τ, 1 - τ) (R halves it; lit_linreg's default does too)."""
    rows = rows_of(x, y)
    h = min(hall_sheather(len(y), tau), 0.98 * min(tau, 1 - tau))
    fits = [rows.weights_to_original(quantile_regression(rows, t)[0], x.shape[1]) for t in (tau + h, tau - h)]
    (w_hi, b_hi), (w_lo, b_lo) = fits
    difference = x @ (w_hi - w_lo).numpy() + (b_hi - b_lo)
    density = np.maximum(0, 2 * h / (difference - np.finfo(float).eps ** (2 / 3)))
    try:
        bread = np.linalg.inv((design * density[:, None]).T @ design)
    except np.linalg.LinAlgError:
        return np.full((design.shape[1],) * 2, np.inf)
    return tau * (1 - tau) * bread @ design.T @ design @ bread


def quantile_regressions(design: Tensor, targets: Tensor, tau: float, tolerance: float = 1e-9) -> Tensor:
    """(B, p): the τ-quantile regressions of B targets (B, n) on one design (n, p), interior-point accurate (not
    moved to a vertex): what a bootstrap's spread needs, at a fraction of B separate fits' cost."""
    return batched_frisch_newton(design, targets, tau, tolerance)[0]


def wild_bootstrap(rows: DesignRows, beta: torch.Tensor, tau: float, resamples: int, seed: int) -> torch.Tensor:
    """(resamples, p) refits, in the coordinates of ``rows``: Feng, He and Hu's (2011) wild bootstrap as R's
    ``boot.rq(bsmethod = "wild")``: targets D·β + w_i·|r̃_i|, w_i = -2τ (probability τ) or 2(1 - τ), with the
    residuals r̃ = r + h_i (τ - 1{r < 0}) / f̂(0) moved out by their leverage h_i (f̂: a Gaussian kernel density
    with Silverman's bandwidth, as the Powell sandwich's)."""
    d = rows.matrix()
    residual = rows.residuals(beta)
    leverage = ((d @ torch.linalg.inv(d.T @ d)) * d).sum(1)
    spread = float(torch.quantile(residual, 0.75) - torch.quantile(residual, 0.25)) / 1.34
    bandwidth = 0.9 * min(float(residual.std()), spread or float(residual.std())) * len(residual) ** (-1 / 5)
    density = float(torch.exp(-0.5 * (residual / bandwidth).square()).mean()) / (math.sqrt(2 * math.pi) * bandwidth)
    adjusted = residual + leverage * (tau - (residual < 0).double()) / density
    generator = torch.Generator().manual_seed(seed)
    below = torch.rand(resamples, rows.n, generator=generator, dtype=torch.float64) < tau
    weights = torch.where(below, -2 * tau, 2 * (1 - tau)).double()
    return quantile_regressions(d, d @ beta + weights * adjusted.abs(), tau)


def candidates(x: np.ndarray, y: np.ndarray, tau: float, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the estimates, constant first, and each candidate's covariance in that order)."""
    n, k = x.shape
    rows = rows_of(x, y)
    beta, _ = quantile_regression(rows, tau)
    jacobian, offset = rows.jacobian(k)
    order = [k, *range(k)]  # statsmodels' order: the constant first

    def table_units(cov):
        return (jacobian @ cov @ jacobian.T).numpy()[np.ix_(order, order)]

    estimates = (jacobian @ beta + offset).numpy()[order]
    design = np.c_[np.ones(n), x]
    residual = y - design @ estimates
    iid = table_units(quantile_covariance(rows, beta, "classical", tau)[0])
    r = r_iid(design, residual, tau)
    correction = n / (n - k - 1)
    return estimates, {
        "powell": table_units(powell_covariance(rows, rows.residuals(beta), tau)),
        "lit_linreg": table_units(quantile_covariance(rows, beta, "robust", tau)[0]),
        "iid": iid,
        "iid n/(n-p)": iid * correction,
        "R iid": r,
        "R iid n/(n-p)": r * correction,
        "R nid": r_nid(x, y, design, tau),
        "wild": table_units(torch.cov(wild_bootstrap(rows, beta, tau, 200, seed).T)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=300)
    parser.add_argument("--quantile", type=float, default=0.5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    tau = args.quantile
    for n, p in WIDE:
        for noise in ("normal", "t3"):
            rng = np.random.default_rng(100 * n + p + (noise == "t3"))
            hits: dict[str, list] = {}
            shift = stats.norm.ppf(tau) if noise == "normal" else stats.t.ppf(tau, 3)  # the noise's τ-quantile
            for i in range(args.datasets):
                x, y, truth = wide_dataset(rng, n, p, noise)
                truth = truth + np.r_[shift, np.zeros(p - 1)]
                estimates, covariances = candidates(x, y, tau, seed=i)
                half = stats.t.ppf(0.975, n - p)
                for name, cov in covariances.items():
                    se = np.sqrt(np.clip(np.diag(cov), 0, None))
                    hits.setdefault(name, []).extend(np.abs(estimates - truth) <= half * se)
            shares = "  ".join(f"{name} {np.mean(v):.1%}" for name, v in hits.items())
            print(f"n = {n}, {p} parameters, {noise}, τ = {tau:g}:  {shares}", flush=True)


if __name__ == "__main__":
    main()
