"""Coverage of candidate intervals for least squares and Huber's M-estimator on small wide designs.

    python -m benchmarks.sandwich_candidates --datasets 400                  # the noise of benchmarks.coverage
    python -m benchmarks.sandwich_candidates --datasets 400 --heteroscedastic
    python -m benchmarks.sandwich_candidates --datasets 400 --huber-refits --designs 16x5   # Huber's refits (slow)
    python -m benchmarks.sandwich_candidates --huber-refits --designs 32x11 --noises t3       # one setting
    python -m benchmarks.sandwich_candidates --huber-refits --designs 64x21 --start 100 --datasets 250  # a part

The study behind issue 17's item 1 for mse and huber: each candidate's 95% intervals on the designs of
``benchmarks.coverage --part wide`` (the same datasets, seed for seed). With ``--heteroscedastic`` the noise's
standard deviation grows as the square root of the skewed column (over its mean, e^0.5), where a classical
interval is known to fail.

- ``classical``: s²(XᵀX)⁻¹ (mse) or Huber's H1 (huber, statsmodels' RLM default), Student's t on n - p;
- ``HC2`` and ``HC3``: the sandwich with each row's ψ² over 1 - h or (1 - h)² (for huber, h its leverage in the
  ψ'-weighted design), Student's t on n - p; HC3 was lit_linreg's default before;
- ``HC2-BM``: HC2 with Bell and McCaffrey's degrees of freedom per coefficient (lit_linreg's default now),
  computed here from the n x n matrices (``tests.oracles.bell_mccaffrey_reference``);
- ``HC3-BM``: HC3 on the same degrees of freedom;
- ``HC2-BMk`` (huber): HC2 on Bell and McCaffrey's degrees of freedom with ψ's fourth cumulant in place of the
  normal's (``kurtosis_adjusted_df``);
- ``HC2N-BM``: each row's ψ² over its variance factor under that linearisation, N_ii (1 - h_i for least squares,
  at least that for Huber), on the same degrees of freedom;
- ``WR-Webb`` and ``WR-Rademacher``: the wild restricted bootstrap test of HC2's t (Davidson and Flachaire, 2008)
  at the planted value, 999 draws of Webb's six-point or Rademacher weights; an interval that inverts the test
  covers exactly where it does not reject there. For least squares it is lit_linreg's default now
  (``lit_linreg.stats.wild_bootstrap``); for Huber it runs through the M-estimator's linearisation (the restricted
  fit one step from the estimate, ψ', the threshold and the scale held: Kline and Santos's (2012) score bootstrap).
- ``WR-refit`` (huber, with ``--huber-refits``): the same test with each draw refitted by Huber's M-estimator, its
  MAD scale re-estimated (the restricted fit's residuals over √(1 - h̃), h̃ the leverages of the restricted
  design). Minutes a setting at 16 rows, 11 to 18 s a dataset at 64 x 21 here: a measurement of what the test
  would cover, not a method lit_linreg could afford to invert at every table's size. ``--start`` measures a part
  of a setting's datasets, each with the draws it has in a full run, so that parts run side by side.

Huber's estimate and scale are statsmodels' RLM (HuberT, MAD scale), which lit_linreg's equal to 1e-6.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import statsmodels.api as sm
from scipy import stats

from benchmarks.coverage import WIDE, wide_dataset
from lit_linreg.stats.huber_fixed_point import MAD_NORMAL
from lit_linreg.stats.wild_bootstrap import WEBB_POINTS
from tests.oracles import bell_mccaffrey_reference

HUBER_K = 1.345
DRAWS = 999
WEIGHTS = {
    "Webb": WEBB_POINTS.numpy(),
    "Rademacher": np.array([-1.0, 1.0]),
}


def candidates(
    x: np.ndarray,
    y: np.ndarray,
    loss: str,
    truth: np.ndarray,
    rng: np.random.Generator,
    refit_rng: np.random.Generator | None = None,
    refit: bool = True,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, object]], dict[str, np.ndarray]]:
    """(estimates, {name: (standard errors, degrees of freedom)}, {name: whether each test accepts the truth}),
    the constant first. With ``refit_rng``, Huber's refitted test too, unless ``refit`` is false (its draws are
    then taken and left, so the datasets after it see the draws of a full run)."""
    design = sm.add_constant(x)
    n, p = design.shape
    if loss == "mse":
        fit = sm.OLS(y, design).fit()
        scale, psi, slope = 1.0, fit.resid, np.ones(n)
    else:
        fit = sm.RLM(y, design, M=sm.robust.norms.HuberT(HUBER_K)).fit()
        scale = fit.scale
        r = fit.resid / scale
        psi, slope = np.clip(r, -HUBER_K, HUBER_K), (np.abs(r) <= HUBER_K).astype(float)
    bread_inverse = np.linalg.inv((design * slope[:, None]).T @ design)
    leverage = slope * np.einsum("ij,jk,ik->i", design, bread_inverse, design)
    errors = {"classical": np.asarray(fit.bse)}
    for name, power in (("HC2", 1), ("HC3", 2)):
        weight = np.where(leverage < 1 - 1e-12, psi**2 / (1 - leverage) ** power, 0.0)
        covariance = scale**2 * bread_inverse @ (design.T * weight) @ design @ bread_inverse
        errors[name] = np.sqrt(np.diag(covariance))
    # Each row's ψ̂ variance factor under the linearisation, N_ii of N = (I - P)(I - P)ᵀ, P = S X B⁻¹Xᵀ (1 - h_i
    # for least squares): HC2's 1 - h_i replaced by it.
    residual_maker = np.eye(n) - (slope[:, None] * design) @ bread_inverse @ design.T
    spread = (residual_maker**2).sum(1)
    weight = np.where(leverage < 1 - 1e-12, psi**2 / spread, 0.0)
    errors["HC2N"] = np.sqrt(np.diag(scale**2 * bread_inverse @ (design.T * weight) @ design @ bread_inverse))
    bm = bell_mccaffrey_reference(design, slope)
    intervals = {name: (se, n - p) for name, se in errors.items() if name != "HC2N"}
    intervals["HC2-BM"] = (errors["HC2"], bm)
    intervals["HC3-BM"] = (errors["HC3"], bm)
    intervals["HC2N-BM"] = (errors["HC2N"], bm)
    if loss == "huber":
        intervals["HC2-BMk"] = (
            errors["HC2"],
            kurtosis_adjusted_df(design, bread_inverse, leverage, residual_maker, spread, psi),
        )
    tests = {}
    for name, points in WEIGHTS.items():
        v = points[rng.integers(len(points), size=(DRAWS, n))]
        tests[f"WR-{name}"] = wild_restricted_accepts(design, bread_inverse, psi * scale, slope, fit.params - truth, v)
    if loss == "huber" and refit_rng is not None:  # its own draws: the other columns' stay as without it
        v = WEIGHTS["Webb"][refit_rng.integers(6, size=(DRAWS, n))]
        if refit:
            tests["WR-refit"] = huber_wild_restricted_accepts(design, y, truth, v)
    return np.asarray(fit.params), intervals, tests


def kurtosis_adjusted_df(design, bread_inverse, leverage, residual_maker, spread, psi) -> np.ndarray:
    """Bell and McCaffrey's degrees of freedom of each coefficient's HC2 t without their normal errors. The
    estimate is a quadratic form ψᵀAψ of the linearisation's ψ (ψ̂ = Mψ, A = MᵀW²M); for iid ψ with variance σ²
    and fourth cumulant κ its variance is 2σ⁴tr(A²) + κΣA_ii² (Seber and Lee, 2003, Theorem 1.6), so Satterthwaite's
    ν = (tr A)² / (tr(A²) + γ/2·ΣA_ii²), γ = κ/σ⁴ >= -2. γ by the moments of ψ̂: Σψ̂² has mean σ²tr N and Σψ̂⁴
    has mean κΣM_ij⁴ + 3σ⁴ΣN_ii², N = MMᵀ (``spread``: its diagonal). Huber's clipped ψ is flatter than normal
    (γ < 0): ν rises."""
    sigma2 = (psi**2).sum() / spread.sum()
    cumulant = ((psi**4).sum() - 3 * sigma2**2 * (spread**2).sum()) / (residual_maker**4).sum()
    gamma = max(cumulant / sigma2**2, -2.0)
    hc2 = np.where(leverage < 1 - 1e-12, 1 / (1 - leverage), 0.0)
    dfs = []
    for column in (design @ bread_inverse).T:
        a = residual_maker.T @ ((column**2 * hc2)[:, None] * residual_maker)
        dfs.append(np.trace(a) ** 2 / ((a * a).sum() + gamma / 2 * (np.diag(a) ** 2).sum()))
    return np.array(dfs)


def wild_restricted_accepts(design, bread_inverse, psi, slope, distance, v) -> np.ndarray:
    """Whether the wild restricted bootstrap test of each β_j = β̂_j - distance_j accepts at 5%, linearised: the
    restricted fit's ψ is ψ + δ·ψ'·a/κ (a = D B⁻¹e_j, κ its variance factor; exact for least squares), rescaled by
    1/√(1 - h̃), times the draws' weights, refitted by (I - ψ'·D B⁻¹Dᵀ), HC2's t of each against the observed."""
    leverage = slope * np.einsum("ij,jk,ik->i", design, bread_inverse, design)
    hc2 = np.where(leverage < 1 - 1e-12, 1 / (1 - leverage), 0.0)
    hat = slope[:, None] * design @ bread_inverse @ design.T
    accepts = []
    for j, delta in enumerate(distance):
        a = design @ bread_inverse[:, j]
        kappa = bread_inverse[j, j]
        u = a**2 * hc2
        restricted = 1 - leverage + slope * a**2 / kappa
        rescale = np.where(restricted > 1e-12, 1 / np.sqrt(np.maximum(restricted, 1e-12)), 0.0)
        draws = (psi + delta * slope * a / kappa) * rescale * v  # (draws, n)
        refitted = draws - draws @ hat.T
        t_star = np.abs(draws @ a) / np.sqrt(refitted**2 @ u)
        exceed = (t_star >= abs(delta) / np.sqrt(u @ psi**2)).sum()
        accepts.append((1 + exceed) / (DRAWS + 1) > 0.05)
    return np.array(accepts)


def huber_fits(design: np.ndarray, y: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(β, scale) of each row of ``y`` (draws, n): RLM(M=HuberT()) with its MAD scale, by iteratively reweighted
    least squares from least squares, the scale re-estimated each step, each draw to a step of 1e-8 or 60 steps (on
    one 32 x 11 dataset, 39 of 999 draws were still moving at 60)."""
    outer = gram_products(design)
    beta = np.linalg.lstsq(design, y.T, rcond=None)[0].T
    active = np.arange(len(y))
    for _ in range(iterations):
        target, residual = y[active], y[active] - beta[active] @ design.T
        u = np.abs(residual) / mad_scale(residual)[:, None]
        weight = np.where(u <= HUBER_K, 1.0, HUBER_K / np.maximum(u, HUBER_K))
        new = np.linalg.solve(weighted_gram(outer, weight), ((weight * target) @ design)[..., None])[..., 0]
        moving = np.abs(new - beta[active]).max(1) >= 1e-8 * (1 + np.abs(new).max(1))
        beta[active] = new
        active = active[moving]
        if len(active) == 0:
            break
    return beta, mad_scale(y - beta @ design.T)


def gram_products(design: np.ndarray) -> np.ndarray:
    """(n, p, p): each row's d_i d_iᵀ, so that Σ w_i·d_i d_iᵀ for many weight vectors is one matrix product, not a
    p x n by n x p product a draw."""
    return design[:, :, None] * design[:, None, :]


def weighted_gram(outer: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(draws, p, p): Dᵀdiag(w)D for each row w of ``weight``."""
    return np.tensordot(weight, outer, axes=1)


def mad_scale(residual: np.ndarray) -> np.ndarray:
    """Each row's median |r| / Φ⁻¹(3/4): RLM's MAD scale, about 0."""
    return np.median(np.abs(residual), axis=1) / MAD_NORMAL


def huber_hc2_errors(design: np.ndarray, y: np.ndarray, beta: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(draws, p) standard errors of the ``HC2`` candidate above, for each row of ``y``."""
    outer = gram_products(design)
    r = (y - beta @ design.T) / scale[:, None]
    psi, slope = np.clip(r, -HUBER_K, HUBER_K), (np.abs(r) <= HUBER_K).astype(float)
    bread_inverse = np.linalg.inv(weighted_gram(outer, slope))
    leverage = slope * ((design @ bread_inverse) * design).sum(-1)
    weight = np.where(leverage < 1 - 1e-12, psi**2 / (1 - np.minimum(leverage, 1 - 1e-12)), 0.0)
    covariance = np.einsum("dij,djk,dik->di", bread_inverse, weighted_gram(outer, weight), bread_inverse)
    return scale[:, None] * np.sqrt(covariance)


def huber_wild_restricted_accepts(design: np.ndarray, y: np.ndarray, truth: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the wild restricted bootstrap test of each β_j = truth_j accepts at 5%, every draw refitted."""
    beta, scale = huber_fits(design, y[None])
    t = np.abs(beta[0] - truth) / huber_hc2_errors(design, y[None], beta, scale)[0]
    accepts = []
    for j in range(design.shape[1]):
        others = np.delete(design, j, 1)
        restricted, _ = huber_fits(others, (y - truth[j] * design[:, j])[None])
        fitted = others @ restricted[0] + truth[j] * design[:, j]
        leverage = (np.linalg.qr(others)[0] ** 2).sum(1)
        draws = fitted + (y - fitted) / np.sqrt(1 - leverage) * v
        beta_star, scale_star = huber_fits(design, draws)
        t_star = np.abs(beta_star[:, j] - truth[j]) / huber_hc2_errors(design, draws, beta_star, scale_star)[:, j]
        accepts.append((1 + (t_star >= t[j]).sum()) / (DRAWS + 1) > 0.05)
    return np.array(accepts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=400)
    parser.add_argument(
        "--start", type=int, default=0, help="count from this dataset on (the ones before are drawn, not measured)"
    )
    parser.add_argument("--heteroscedastic", action="store_true")
    parser.add_argument("--huber-refits", action="store_true", help="add WR-refit for huber (slow)")
    parser.add_argument("--designs", nargs="+", metavar="NxP", help="only these designs, e.g. 16x5 32x11")
    parser.add_argument("--noises", nargs="+", choices=["normal", "t3"], default=["normal", "t3"], help="only these")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # RLM's iteration notices on a few datasets
    for n, p in WIDE:
        if args.designs and f"{n}x{p}" not in args.designs:
            continue
        for noise in args.noises:
            rng = np.random.default_rng(100 * n + p + (noise == "t3"))
            draws = np.random.default_rng(7)  # the bootstrap's weights, apart from the datasets' draws
            refit_draws = np.random.default_rng(8) if args.huber_refits else None
            hits: dict[str, list] = {}
            for index in range(args.datasets):
                x, y, truth = wide_dataset(rng, n, p, noise)
                if args.heteroscedastic:
                    mean = x @ truth[1:] + truth[0]
                    y = mean + (y - mean) * np.sqrt(x[:, -1] / np.exp(0.5))
                measured = index >= args.start
                for loss in ("mse", "huber"):
                    estimates, intervals, tests = candidates(x, y, loss, truth, draws, refit_draws, measured)
                    if not measured:
                        continue
                    for name, (se, df) in intervals.items():
                        covered = np.abs(estimates - truth) <= stats.t.ppf(0.975, df) * se
                        hits.setdefault(f"{loss} {name}", []).extend(covered)
                    for name, accepts in tests.items():
                        hits.setdefault(f"{loss} {name}", []).extend(accepts)
            # To 0.01%, a share determines its count: parts run with --start add up exactly.
            shares = "  ".join(f"{name} {np.mean(v):.2%}" for name, v in hits.items())
            count = len(next(iter(hits.values()), []))
            print(f"n = {n}, {p} parameters, {noise} ({count} intervals each):  {shares}", flush=True)


if __name__ == "__main__":
    main()
