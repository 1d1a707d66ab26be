"""The exact optimum: the best w and b the loss allows on the training rows, to measure SGD against.

- mae: least absolute deviations, a linear program solved in its dual form by HiGHS: maximise y·a subject
  to Dᵀa = 0 and |a_i| <= 1/n, with D = [X, 1]; (w, b) are minus the multipliers of the equality constraints.
  The dual has d + 1 constraints instead of n, which makes it 20-60x faster than the primal here
  (0.05 s at 5,000 rows x 10 features, 6 s at 100,000).
- mse: least squares (LAPACK).
- huber: a smooth convex problem, solved to machine precision by L-BFGS-B from the least-squares start.

All in float64. ``bootstrap_intervals`` refits on rows drawn with replacement for 95% confidence intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize


@dataclass
class Optimum:
    w: np.ndarray
    b: float
    loss: float
    method: str


def mean_loss(residual: np.ndarray, loss: str, huber_delta: float) -> float:
    if loss == "mae":
        return float(np.abs(residual).mean())
    if loss == "mse":
        return float(np.square(residual).mean())
    a = np.abs(residual)
    return float(np.where(a <= huber_delta, 0.5 * a**2, huber_delta * (a - 0.5 * huber_delta)).mean())


def exact_fit(x: np.ndarray, y: np.ndarray, loss: str, huber_delta: float = 1.0) -> Optimum:
    """The w and b minimising the mean ``loss`` of X·w + b - y."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    if loss == "mae":
        result = optimize.linprog(-y, A_eq=design.T, b_eq=np.zeros(d + 1), bounds=(-1 / n, 1 / n), method="highs")
        if result.status != 0:
            raise RuntimeError(f"the linear program for the exact MAE optimum failed: {result.message}")
        coef, method = -result.eqlin.marginals, "least absolute deviations, dual linear program (scipy HiGHS)"
    else:
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        method = "least squares (numpy lstsq)"
        if loss == "huber":

            def objective(c: np.ndarray) -> tuple[float, np.ndarray]:
                r = design @ c - y
                return mean_loss(r, "huber", huber_delta), design.T @ np.clip(r, -huber_delta, huber_delta) / n

            options = {"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-12}
            coef = optimize.minimize(objective, coef, jac=True, method="L-BFGS-B", options=options).x
            method = "Huber, convex minimisation (scipy L-BFGS-B)"
    return Optimum(coef[:d], float(coef[d]), mean_loss(design @ coef - y, loss, huber_delta), method)


def bootstrap_intervals(
    x: np.ndarray,
    y: np.ndarray,
    loss: str,
    huber_delta: float,
    resamples: int,
    seed: int,
    to_original: Callable[[np.ndarray, float], tuple[np.ndarray, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile intervals of (w..., b), in original units, over fits to rows drawn with replacement."""
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(resamples):
        rows = rng.integers(0, len(x), size=len(x))
        fit = exact_fit(x[rows], y[rows], loss, huber_delta)
        w, b = to_original(fit.w, fit.b)
        fits.append([*w, b])
    low, high = np.percentile(np.array(fits), [2.5, 97.5], axis=0)
    return low, high
