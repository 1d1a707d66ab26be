"""The tutorial's update rule as a ``torch.optim.Optimizer``.

Going through an optimizer (rather than ``p -= lr * p.grad`` in the training step) is what makes Lightning
count the step: ``global_step``, ``max_steps`` and checkpoint cadence all follow ``optimizer.step()`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


class SGD(torch.optim.Optimizer):
    """Plain minibatch stochastic gradient descent: p <- p - lr * dL/dp for every parameter p.

    No momentum, no weight decay: exactly the rule the tutorial writes by hand.

    Args:
        params: the parameters to update.
        lr: the learning rate (step size), > 0.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
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

    A function of the step alone, so a resumed run needs no scheduler state: ``linear`` decays from lr to
    lr / total_steps at the last step.
    """
    if schedule == "constant":
        return lr
    return lr * (1 - step / total_steps)
