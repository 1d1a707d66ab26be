"""``report.png``: which columns drive the outcome, how much and how sure, and how SGD got there.

Left: each column's effect per standard deviation of the column (so one axis serves every column), the exact
optimum with its (1 - alpha) interval, SGD's weight and the planted one when known; one row per column, so 30 columns
stay readable. Right: the training loss per epoch against the optimum's.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # files only: no screen needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lit_linreg.regression import Regression  # noqa: E402
from lit_linreg.report import level  # noqa: E402


def report_figure(result: Regression, loss_history: list[float]) -> Figure:
    names = result.feature_names
    rows = list(range(len(names)))[::-1]  # the first column at the top, as in the table
    height = max(4.0, 0.32 * len(names) + 1.6)
    figure, (effects, curve) = plt.subplots(1, 2, figsize=(12, height), gridspec_kw={"width_ratios": [3, 2]})

    scale = [s if s else 1.0 for s in result.column_std]
    learned = [w * s for w, s in zip(result.learned[:-1], scale, strict=True)]
    planted = None if result.truth is None else [w * s for w, s in zip(result.truth[:-1], scale, strict=True)]
    optimum = result.optimum
    if optimum is not None:
        estimates = [v if v is not None else float("nan") for v in optimum.per_sd]
        errors = None
        unbounded = False
        if optimum.lower is not None:
            bounds = zip(estimates, optimum.lower[:-1], optimum.upper[:-1], scale, strict=True)  # the bias has none
            pairs = [(e - lo * s, hi * s - e) if lo is not None else (0.0, 0.0) for e, lo, hi, s in bounds]
            # An unbounded end (a rank-test interval can have one) runs off the plot: far past every finite one.
            spans = [v for pair in pairs for v in pair] + estimates
            reach = 100 * max([abs(v) for v in spans if math.isfinite(v)] + [1.0])
            unbounded = any(math.isinf(v) for pair in pairs for v in pair)
            pairs = [tuple(v if math.isfinite(v) else reach for v in pair) for pair in pairs]
            errors = [[below for below, _ in pairs], [above for _, above in pairs]]
        label = "exact optimum" + (f" with {level(result.alpha)} interval" if errors else "")
        label += " (to the edge: unbounded)" if unbounded else ""
        effects.errorbar(estimates, rows, xerr=errors, fmt="s", color="tab:green", capsize=4, label=label, ms=6)
        if unbounded:
            ends = [end for e, (below, above) in zip(estimates, pairs, strict=True) for end in (e - below, e + above)]
            markers = [*estimates, *learned, *(planted or [])]
            shown = [v for v in ends if abs(v) < reach / 2] + [v for v in markers if math.isfinite(v)]
            low, high = min(shown + [0.0]), max(shown + [0.0])
            pad = 0.1 * (high - low or 1.0)
            effects.set_xlim(low - pad, high + pad)
    effects.scatter(learned, rows, marker="o", s=30, color="tab:blue", label="learned by SGD", zorder=4)
    if planted is not None:
        effects.scatter(planted, rows, marker="x", s=70, color="black", label="planted", zorder=3)
    effects.axvline(0, color="grey", lw=0.8)
    effects.set_yticks(rows, names)
    effects.set_xlabel(f"effect of one standard deviation of the column on {result.target}")
    effects.set_title("Which columns drive the outcome, and how sure")
    effects.legend(loc="best", fontsize=8)

    if loss_history:
        curve.plot(range(1, len(loss_history) + 1), loss_history, color="tab:blue", label="training loss (epoch mean)")
    if optimum is not None and optimum.loss is not None:
        curve.axhline(optimum.loss, color="tab:green", ls="--", label="exact optimum")
    if loss_history and min(loss_history) > 0:
        curve.set_yscale("log")
    curve.set_xlabel("epoch")
    units = ", standardized" if result.loss_scale == "standardized" else ""
    curve.set_ylabel(f"{result.loss}{units}")
    gap = result.loss_gap
    curve.set_title("Loss" + (f": SGD {gap:+.2%} from the optimum" if gap is not None else ""))
    curve.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return figure
