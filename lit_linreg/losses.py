"""The three losses, defined once: SGD trains on them, the exact optimum minimises them, inference differentiates them.

Each is a function of the residual r = prediction - target, elementwise. ``psi`` is its derivative and
``psi_prime`` the derivative of that (almost everywhere): the sandwich covariances of ``stats.inference`` are
built from them. Plain torch, so the same definitions serve float32 training batches and float64 statistics.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

Loss = Literal["mae", "mse", "huber"]
LOSSES: tuple[str, ...] = get_args(Loss)
LOSS_NAMES = {"mae": "mean absolute error", "mse": "mean squared error", "huber": "mean Huber loss"}


def elementwise(residual: Tensor, loss: str, huber_delta: float = 1.0) -> Tensor:
    """|r| (mae), r² (mse), or Huber's r²/2 for |r| <= delta and delta·(|r| - delta/2) beyond."""
    if loss == "mae":
        return residual.abs()
    if loss == "mse":
        return residual.square()
    if loss == "huber":
        size = residual.abs()
        return torch.where(size <= huber_delta, 0.5 * residual.square(), huber_delta * (size - 0.5 * huber_delta))
    raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")


def psi(residual: Tensor, loss: str, huber_delta: float = 1.0) -> Tensor:
    """The derivative of the elementwise loss with respect to the residual."""
    if loss == "mae":
        return residual.sign()
    if loss == "mse":
        return 2 * residual
    return residual.clamp(-huber_delta, huber_delta)


def psi_prime(residual: Tensor, loss: str, huber_delta: float = 1.0) -> Tensor:
    """The second derivative (zero almost everywhere for mae, whose curvature inference estimates instead)."""
    if loss == "mae":
        return torch.zeros_like(residual)
    if loss == "mse":
        return torch.full_like(residual, 2.0)
    return (residual.abs() <= huber_delta).to(residual.dtype)
