"""``report.png``: the weights at a glance (learned, planted, exact optimum with its interval) and the loss curve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no screen needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def report_figure(summary: dict, loss_history: list[float]) -> Figure:
    names = [*summary["feature_names"], "bias"]
    positions = range(len(names))
    learned = [*summary["learned"]["w"], summary["learned"]["b"]]
    figure, (weights, curve) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})

    if summary["optimum"] is not None:
        optimum = [*summary["optimum"]["w"], summary["optimum"]["b"]]
        errors = None
        if summary["intervals"] is not None:
            bounds = [*summary["intervals"]["w"], summary["intervals"]["b"]]
            errors = [
                [o - lo for o, (lo, _) in zip(optimum, bounds, strict=True)],
                [hi - o for o, (_, hi) in zip(optimum, bounds, strict=True)],
            ]
        label = "exact optimum" + (" with 95% interval" if errors else "")
        weights.errorbar(positions, optimum, yerr=errors, fmt="s", color="tab:green", capsize=5, label=label, ms=7)
    if summary["true"] is not None:
        planted = [*summary["true"]["w"], summary["true"]["b"]]
        weights.scatter(positions, planted, marker="x", s=90, color="black", label="planted", zorder=3)
    weights.scatter(positions, learned, marker="o", s=45, color="tab:blue", label="learned by SGD", zorder=4)
    weights.axhline(0, color="grey", lw=0.8)
    weights.set_xticks(list(positions), names, rotation=30, ha="right")
    weights.set_ylabel("weight (original units)")
    weights.set_title("How much each column weighs")
    weights.legend(loc="best", fontsize=9)

    if loss_history:
        curve.plot(range(1, len(loss_history) + 1), loss_history, color="tab:blue", label="training loss (epoch mean)")
    if summary["optimum"] is not None:
        curve.axhline(summary["optimum"]["loss"], color="tab:green", ls="--", label="exact optimum")
    curve.set_yscale("log")
    curve.set_xlabel("epoch")
    scale = ", standardized" if summary["loss_scale"] == "standardized" else ""
    curve.set_ylabel(f"{summary['loss']}{scale}")
    gap = summary["loss_gap"]
    curve.set_title("Loss" + (f": {gap:+.2%} from the optimum" if gap is not None else ""))
    curve.legend(loc="best", fontsize=9)
    figure.tight_layout()
    return figure
