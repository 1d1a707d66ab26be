"""The tutorial's people: four scores with planted weights, and a noisy count that the weights explain.

X ~ N(0, 1) (n x d), Y = X·w + b + ε with ε ~ N(noise_mean, noise_std), all drawn from one seeded generator in
float32, so a seed fixes every number. The tutorial's own generator never uses its b = 1.1: its intercept is
the noise mean (1.0); ``true_b: 0, noise_mean: 1`` reproduces it.
"""

from __future__ import annotations

import torch
from torch import Tensor

TUTORIAL_FEATURES = ["appearance", "personality", "wealth", "inner_quality"]
TUTORIAL_TARGET = "relationships"


def planted_rows(
    n_samples: int, true_w: list[float], true_b: float, noise_std: float, noise_mean: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    x = torch.randn(n_samples, len(true_w), generator=generator)
    noise = torch.randn(n_samples, generator=generator).mul_(noise_std).add_(noise_mean)
    y = (x @ torch.tensor(true_w)).add_(true_b).add_(noise)  # in place: 10M rows peak lower
    return x, y
