"""The tutorial's update rule as a ``torch.optim.Optimizer``, optionally preconditioned, and its lr schedules.

Going through an optimizer (rather than ``p -= lr * p.grad`` in the training step) is what makes Lightning count
the step: ``global_step``, ``max_steps`` and the checkpoint cadence all follow ``optimizer.step()`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch

Schedule = Literal["constant", "linear", "exponential"]
# An exponential schedule ends at this fraction of the initial lr.
EXPONENTIAL_FINAL_RATIO = 1e-4


class SGD(torch.optim.Optimizer):
    """Minibatch stochastic gradient descent: p <- p - lr * M * dL/dp, with M the identity unless a param group
    sets ``preconditioner``.

    With M = I it is exactly the rule the tutorial writes by hand: no momentum, no weight decay. With M = C⁻¹, the
    inverse correlation matrix of the standardized columns, it is SGD on whitened columns, on which every
    direction has the same curvature: nearly collinear columns then converge as fast as independent ones.

    Args:
        params: the parameters, or param groups (dicts), each optionally with a ``preconditioner`` matrix.
        lr: the learning rate (step size), > 0.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr, "preconditioner": None})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            preconditioner = group["preconditioner"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad if preconditioner is None else preconditioner @ p.grad
                p.add_(update, alpha=-group["lr"])
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forgets the gradients. Simpler than the base class's, whose profiling wrapper costs more than the step."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()


def scheduled_lr(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total_steps``.

    A function of the step alone, so a resumed run needs no scheduler state. ``linear`` decays from lr to
    lr / total_steps at the last step; ``exponential`` from lr to lr · 1e-4, by the same factor every step.
    """
    if schedule == "constant":
        return lr
    if schedule == "linear":
        return lr * (1 - step / total_steps)
    return lr * EXPONENTIAL_FINAL_RATIO ** (step / total_steps)
