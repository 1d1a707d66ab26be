"""The losses, each defined once: what SGD trains on, what the exact optimum minimises, how inference goes.

Each is a function of the residual r = prediction - target, elementwise. ``psi`` is its derivative and
``psi_prime`` the derivative of that (almost everywhere); ``exact_fit`` and ``covariance`` name the solver and
the covariance of its optimum (``stats.optimum``, ``stats.inference``), and ``fit_measure`` its R² or pseudo-R².
Plain torch, so the same definitions serve float32 training batches and float64 statistics. ``loss_of`` is the
one place a loss's name is looked up; nothing else branches on it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, get_args

import torch
from torch import Tensor

if TYPE_CHECKING:
    from lit_linreg.stats.optimum import ExactFit
    from lit_linreg.stats.rows import DesignRows

LossName = Literal["mae", "mse", "huber", "quantile"]
LOSSES: tuple[str, ...] = get_args(LossName)


class Loss:
    """A loss of the residuals: its elementwise form and derivatives, its exact optimum and that optimum's
    covariance.

    Attributes:
        name: the setting's value (``--model.loss``).
        title: what the report calls its mean.
        fit_measure_name: the R² (or pseudo-R²) it is judged by.
        newton_lr: a Newton-sized first step on standardized, whitened columns (``lr: null``).
        sign_gradient: its gradient is a sign, noisy from a few rows: its runs are planned longer.
        streams: its exact optimum can be found from rows streamed in blocks (a memory-mapped table).
    """

    name: str
    title: str
    fit_measure_name: str
    newton_lr: float
    sign_gradient = False
    streams = True

    def elementwise(self, residual: Tensor) -> Tensor:
        raise NotImplementedError

    def psi(self, residual: Tensor) -> Tensor:
        """The derivative of the elementwise loss with respect to the residual."""
        raise NotImplementedError

    def psi_prime(self, residual: Tensor) -> Tensor:
        """Its second derivative (zero almost everywhere for mae, whose curvature inference estimates instead)."""
        raise NotImplementedError

    def exact_fit(self, rows: DesignRows) -> ExactFit:
        """The β minimising the mean loss of t - D·β."""
        raise NotImplementedError

    def covariance(self, rows: DesignRows, beta: Tensor, kind: str) -> tuple[Tensor, str]:
        """The covariance of the optimum β, ``robust`` or ``classical``, in the coordinates of ``rows``, and the
        name of the estimator that gave it (the report's)."""
        raise NotImplementedError

    def baseline(self, target: Tensor) -> float:
        """The loss summed over the rows of the best constant prediction: the fit measure's denominator."""
        raise NotImplementedError

    def row_scale(self, weights: Tensor) -> Tensor:
        """What each row's residual is multiplied by for case weights w: √w, so that a squared error counts w
        times (weighted least squares) and Huber's loss takes w as an inverse variance (R's ``rlm``)."""
        return weights.sqrt()

    def at_scale(self, scale: float) -> Loss:
        """The loss for residuals of this scale (a loss without one is its own)."""
        return self

    def residual_variance(self, rows: DesignRows, beta: Tensor) -> float | None:
        """The variance of a new observation around its mean, where the loss estimates one (least squares)."""
        return None


class SquaredError(Loss):
    """r²: least squares."""

    name, title, fit_measure_name = "mse", "mean squared error", "R²"
    newton_lr = 0.5  # the curvature of mean r² is 2

    def elementwise(self, residual: Tensor) -> Tensor:
        return residual.square()

    def psi(self, residual: Tensor) -> Tensor:
        return 2 * residual

    def psi_prime(self, residual: Tensor) -> Tensor:
        return torch.full_like(residual, 2.0)

    def exact_fit(self, rows: DesignRows) -> ExactFit:
        from lit_linreg.stats.optimum import ExactFit, least_squares

        return ExactFit(least_squares(rows), "least squares (QR)")

    def covariance(self, rows: DesignRows, beta: Tensor, kind: str) -> tuple[Tensor, str]:
        from lit_linreg.stats.inference import least_squares_covariance

        name = "HC2 heteroscedasticity-robust sandwich" if kind == "robust" else "classical OLS s²(XᵀX)⁻¹"
        return least_squares_covariance(rows, beta, kind), name

    def baseline(self, target: Tensor) -> float:
        return float((target - target.mean()).square().sum())

    def residual_variance(self, rows: DesignRows, beta: Tensor) -> float | None:
        """s² = Σr²/(n - p): what a prediction interval adds to the mean's variance (statsmodels' ``scale``)."""
        return float(rows.residuals(beta).square().sum()) / (rows.n - rows.p)


class QuantileLoss(Loss):
    """The pinball (check) loss ρ_τ(u) = u·(τ - 1{u < 0}) of u = target - prediction: quantile regression.

    Its optimum predicts the τ-quantile of the target given the columns (Koenker and Bassett, 1978), as
    statsmodels' ``QuantReg(y, X).fit(q=τ)`` and R's ``quantreg::rq(tau = τ)``.
    """

    name = "quantile"
    fit_measure_name = "pseudo-R² (Koenker-Machado R1)"
    sign_gradient = True
    streams = False  # the interior point keeps ~13 values a row

    def __init__(self, tau: float = 0.5) -> None:
        self.tau = tau
        # A sign-like gradient of size at most max(τ, 1 - τ): this step moves every weight by at most half its
        # column's mean |z|, as mae's 0.5 does with its gradient of size 1.
        self.newton_lr = 0.5 / max(tau, 1 - tau)

    @property
    def title(self) -> str:
        return f"mean pinball loss (τ = {self.tau:g})"

    def row_scale(self, weights: Tensor) -> Tensor:
        """w itself: the pinball loss is homogeneous, ρ_τ(w·u) = w·ρ_τ(u) (R's ``rq(weights=)``)."""
        return weights

    def elementwise(self, residual: Tensor) -> Tensor:
        # residual = prediction - target = -u: ρ_τ(u) = max(τ·u, (τ - 1)·u)
        return torch.maximum(-self.tau * residual, (1 - self.tau) * residual)

    def psi(self, residual: Tensor) -> Tensor:
        above, below = (residual > 0).to(residual.dtype), (residual < 0).to(residual.dtype)
        return (1 - self.tau) * above - self.tau * below

    def psi_prime(self, residual: Tensor) -> Tensor:
        return torch.zeros_like(residual)

    def exact_fit(self, rows: DesignRows) -> ExactFit:
        from lit_linreg.stats.optimum import ExactFit, quantile_regression

        beta, iterations = quantile_regression(rows, self.tau)
        return ExactFit(beta, f"{self.estimator} (Frisch-Newton interior point, exact vertex)", iterations)

    @property
    def estimator(self) -> str:
        return f"quantile regression, τ = {self.tau:g}"

    def covariance(self, rows: DesignRows, beta: Tensor, kind: str) -> tuple[Tensor, str]:
        from lit_linreg.stats.inference import quantile_covariance

        return quantile_covariance(rows, beta, kind, self.tau)

    def baseline(self, target: Tensor) -> float:
        """Σρ_τ around the target's τ-quantile (an order statistic minimises it; any minimiser gives this sum)."""
        at = target.sort().values[min(max(math.ceil(self.tau * len(target)) - 1, 0), len(target) - 1)]
        return float(self.elementwise(at - target).sum())


class AbsoluteError(QuantileLoss):
    """|r| = 2·ρ_½(r): least absolute deviations, the median regression (the tutorial's loss).

    The 0.5 quantile's optimum and inference, with the tutorial's loss: twice the pinball loss, so its SGD steps
    (and the tutorial's learned weights) are the tutorial's.
    """

    name, title = "mae", "mean absolute error"
    newton_lr = 0.5  # a sign gradient moves every weight by at most its column's mean |z|: half is a bold step
    estimator = "least absolute deviations"

    def __init__(self) -> None:
        self.tau = 0.5

    def elementwise(self, residual: Tensor) -> Tensor:
        return residual.abs()

    def psi(self, residual: Tensor) -> Tensor:
        return residual.sign()


class HuberLoss(Loss):
    """Huber's loss at the threshold delta = k·scale: r²/2 for |r| <= delta and delta·(|r| - delta/2) beyond.

    As statsmodels' ``RLM(M=HuberT())`` and R's ``MASS::rlm`` define Huber's M-estimator: k = 1.345 (95%
    efficiency under normal errors) times a robust scale of the residuals, their MAD (median |r| / Φ⁻¹(3/4)),
    estimated with the fit. Without a scale, ``exact_fit`` finds both: the weights for a scale (Newton, exact for
    a piecewise quadratic) and the MAD of their residuals, in turn, to their joint fixed point (where RLM's
    iterations converge); its result carries the loss at that scale. SGD trains the loss at the scale of that
    same fit, made before its first step, so that its optimum is the analysis's.
    """

    name, title = "huber", "mean Huber loss"
    fit_measure_name = "pseudo-R² (share of Huber loss explained)"
    newton_lr = 1.0  # the curvature of Huber's loss is at most 1

    def __init__(self, k: float = 1.345, scale: float | None = None) -> None:
        self.k, self.scale = k, scale

    @property
    def delta(self) -> float:
        if self.scale is None:
            raise ValueError("Huber's loss needs its scale: fit it (exact_fit), or give one")
        return self.k * self.scale

    def at_scale(self, scale: float) -> HuberLoss:
        return HuberLoss(self.k, scale)

    def elementwise(self, residual: Tensor) -> Tensor:
        size, delta = residual.abs(), self.delta
        return torch.where(size <= delta, 0.5 * residual.square(), delta * (size - 0.5 * delta))

    def psi(self, residual: Tensor) -> Tensor:
        return residual.clamp(-self.delta, self.delta)

    def psi_prime(self, residual: Tensor) -> Tensor:
        return (residual.abs() <= self.delta).to(residual.dtype)

    def exact_fit(self, rows: DesignRows) -> ExactFit:
        from lit_linreg.stats.optimum import ExactFit, huber_m_estimate, huber_newton

        if self.scale is not None:
            beta, iterations = huber_newton(rows, self)
            return ExactFit(beta, f"Huber M-estimate (k = {self.k:g} at a fixed scale; Newton)", iterations, self)
        beta, scale, iterations = huber_m_estimate(rows, self.k)
        method = f"Huber M-estimate (k = {self.k:g}, MAD scale estimated with the fit; Newton)"
        return ExactFit(beta, method, iterations, self.at_scale(scale))

    def covariance(self, rows: DesignRows, beta: Tensor, kind: str) -> tuple[Tensor, str]:
        from lit_linreg.stats.inference import m_estimator_covariance

        name = "HC2-type M-estimator sandwich" if kind == "robust" else "Huber's H1 (RLM's default)"
        return m_estimator_covariance(rows, beta, kind, self), name

    def baseline(self, target: Tensor) -> float:
        return float(self.elementwise(target - self.location(target)).sum())

    def location(self, target: Tensor) -> float:
        """argmin_m Σ huber(t_i - m): Newton steps on a piecewise quadratic, from the median."""
        m, delta = float(target.median()), self.delta
        for _ in range(100):
            r = target - m
            inside = int((r.abs() <= delta).sum())
            if inside == 0:
                break
            step = float(r.clamp(-delta, delta).sum()) / inside
            m += step
            if abs(step) <= 1e-15 * (1 + abs(m)):
                break
        return m if torch.isfinite(torch.tensor(m)) else float(target.median())


def loss_of(name: str, huber_k: float = 1.345, scale: float | None = None, *, quantile: float = 0.5) -> Loss:
    """The loss a setting names; Huber's at ``huber_k`` times ``scale`` (in the residuals' units), or at the scale
    its exact fit will estimate; the pinball loss at ``quantile``."""
    if name == "mse":
        return SquaredError()
    if name == "mae":
        return AbsoluteError()
    if name == "huber":
        return HuberLoss(huber_k, scale)
    if name == "quantile":
        return QuantileLoss(quantile)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")


def title_of(name: str, quantile: float = 0.5) -> str:
    return loss_of(name, quantile=quantile).title
