"""The end-of-fit report: ``summary.json`` and the regression table, from the SGD weights and the analysis.

The table reads like statsmodels' ``summary()``: for each weight and the bias, the estimate (the exact optimum),
its standard error, p-value and 95% interval, the effect of one standard deviation of the column, then the
weight SGD learned and its distance from the estimate in standard errors. Numbers have 5 significant digits, so
an effect of -1.7e-5 per unit is printed as such, not as -0.0000.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from lit_linreg.losses import LOSS_NAMES
from lit_linreg.stats.analysis import Analysis, Coefficient

# The verdict: SGD has converged when every weight is within this many standard errors of the exact optimum
# and its loss within this share of the optimum's.
CONVERGED_SE = 0.5
CONVERGED_GAP = 0.01


@dataclass
class SgdResult:
    """What SGD learned, in the table's units, and its loss on the training rows in training units."""

    w: list[float]
    b: float
    train_loss: float


def build_summary(
    *,
    names: list[str],
    target: str,
    column_std: list[float],
    sgd: SgdResult,
    loss: str,
    standardized: bool,
    analysis: Analysis | None,
    optimum_loss: float | None,
    optimum_note: str | None,
    truth: tuple[list[float], float] | None,
    run: dict,
    notes: list[str],
) -> dict:
    """summary.json: every number of the report, JSON-safe (None where a number does not exist)."""
    summary: dict = {
        "feature_names": names,
        "target": target,
        "column_std": column_std,
        "learned": {"w": sgd.w, "b": sgd.b},
        "true": None if truth is None else {"w": list(truth[0]), "b": truth[1]},
        "loss": loss,
        "loss_scale": "standardized" if standardized else "original",
        "train_loss": sgd.train_loss,
        "optimum": None,
        "optimum_note": optimum_note,
        "loss_gap": None,
        "loss_gap_absolute": None,
        "intervals": None,
        "std_errors": None,
        "p_values": None,
        "per_sd": None,
        "r2": None,
        "r2_name": None,
        "n_rows": None,
        "df_resid": None,
        "condition_number": None,
        "convergence": None,
        "warnings": [],
        "notes": list(notes),
        **run,
    }
    if analysis is not None:
        _add_analysis(summary, analysis, sgd, optimum_loss)
    return _json_safe(summary)


def _add_analysis(summary: dict, analysis: Analysis, sgd: SgdResult, optimum_loss: float) -> None:
    weights, bias = analysis.weights, analysis.bias
    summary["optimum"] = {
        "w": [c.estimate for c in weights],
        "b": bias.estimate,
        "loss": optimum_loss,
        "method": analysis.method,
        "fitted": [c.fitted for c in weights],
    }
    gap = sgd.train_loss - optimum_loss
    summary["loss_gap_absolute"] = gap
    # A ratio to a zero (or float-noise) optimum loss means nothing: then only the absolute gap is reported.
    summary["loss_gap"] = gap / optimum_loss if optimum_loss > 1e-12 * max(sgd.train_loss, 1e-300) else None
    if bias.std_error is not None:
        summary["std_errors"] = {"w": [c.std_error for c in weights], "b": bias.std_error}
        summary["p_values"] = {"w": [c.p_value for c in weights], "b": bias.p_value}
        summary["intervals"] = {
            "w": [None if c.low is None else [c.low, c.high] for c in weights],
            "b": [bias.low, bias.high],
            "method": analysis.interval,
            "covariance": analysis.covariance,
        }
    summary["per_sd"] = {"w": [c.per_sd for c in weights]}
    summary["r2"], summary["r2_name"] = analysis.fit_measure, analysis.fit_measure_name
    summary["n_rows"], summary["df_resid"] = analysis.n_rows, analysis.df_resid
    summary["condition_number"] = analysis.condition_number
    summary["warnings"] = [*analysis.design.warnings]
    summary["notes"] += analysis.notes
    summary["convergence"] = _verdict(summary, analysis, sgd)
    if summary["convergence"]["warning"]:
        summary["warnings"].append(summary["convergence"]["warning"])


def _remedies(plan: dict) -> str:
    """What to try next, of what this run did not already do."""
    remedies = []
    if plan.get("lr_schedule", "constant") == "constant":
        remedies.append("--model.lr_schedule exponential")
    remedies.append("more epochs (--trainer.max_epochs)")
    if not (plan.get("standardize") and plan.get("precondition")):
        remedies.append("the table defaults of configs/csv.yaml (standardize, precondition, chosen batch size and lr)")
    elif not plan.get("average_tail"):
        remedies.append("tail averaging (--model.average_tail 0.25)")
    return ", ".join(remedies[:-1]) + f" or {remedies[-1]}" if len(remedies) > 1 else remedies[0]


def _verdict(summary: dict, analysis: Analysis, sgd: SgdResult) -> dict:
    """How far SGD's weights are from the exact optimum, in standard errors, and whether that is converged."""
    names = [*summary["feature_names"], "bias"]
    coefficients = [*analysis.weights, analysis.bias]
    learned = [*sgd.w, sgd.b]
    distances = [_distance(v, c) for v, c in zip(learned, coefficients, strict=True)]
    measured = [(d, name) for d, name in zip(distances, names, strict=True) if d is not None]
    worst = max(measured, default=(None, None))
    gap = summary["loss_gap"]
    far = worst[0] is not None and worst[0] > CONVERGED_SE
    high = gap is not None and gap > CONVERGED_GAP
    warning = None
    if far or high:
        where = f"{worst[0]:.2g} standard errors from the exact optimum on {worst[1]!r}" if far else ""
        loss = f"{gap:+.2%} above the optimum's loss" if high else ""
        warning = (
            f"SGD has not converged: {' and '.join(p for p in (where, loss) if p)} (the table's estimates are the "
            f"optimum's); try {_remedies(summary.get('plan') or {})}"
        )
    return {
        "distance_se": {"w": distances[:-1], "b": distances[-1]},
        "max_distance_se": worst[0],
        "converged": None if worst[0] is None and gap is None else not (far or high),
        "threshold_se": CONVERGED_SE,
        "threshold_gap": CONVERGED_GAP,
        "warning": warning,
    }


def _distance(value: float, c: Coefficient) -> float | None:
    if not c.fitted or c.std_error is None or not c.std_error > 0:
        return None
    return abs(value - c.estimate) / c.std_error


def _json_safe(value):
    """NaN and infinity are not JSON: they become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ----------------------------------------------------------------------------------------------------------------
# The printed table


def significant(value: float | None, digits: int = 5) -> str:
    """``value`` with ``digits`` significant digits, in plain or scientific notation, whichever is shorter."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def shown_path(path: str | os.PathLike) -> str:
    """A path as a person would type it from here: relative below the working directory, else absolute."""
    path = Path(path).absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-300" if value < 1e-300 else f"{value:.2g}"


def format_table(summary: dict) -> str:
    names = [*summary["feature_names"], "bias"]
    optimum = summary["optimum"]
    columns: list[tuple[str, list[str]]] = []
    if summary["true"] is not None:
        columns.append(("true", [significant(v) for v in [*summary["true"]["w"], summary["true"]["b"]]]))
    if optimum is not None:
        fitted = [*optimum["fitted"], True]
        estimates = [*optimum["w"], optimum["b"]]
        columns.append(
            ("estimate", [significant(v) if f else "(left out)" for v, f in zip(estimates, fitted, strict=True)])
        )
        if summary["std_errors"] is not None:
            errors, intervals = summary["std_errors"], summary["intervals"]
            bounds = [*intervals["w"], intervals["b"]]
            columns.append(("std err", [significant(v, 3) for v in [*errors["w"], errors["b"]]]))
            columns.append(("P>|t|", [p_value(v) for v in [*summary["p_values"]["w"], summary["p_values"]["b"]]]))
            columns.append(("[0.025", [significant(b[0]) if b else "-" for b in bounds]))
            columns.append(("0.975]", [significant(b[1]) if b else "-" for b in bounds]))
        columns.append(("per SD", [significant(v, 4) for v in [*summary["per_sd"]["w"], None]]))
    columns.append(("SGD", [significant(v) for v in [*summary["learned"]["w"], summary["learned"]["b"]]]))
    convergence = summary["convergence"]
    if convergence is not None:
        distances = [*convergence["distance_se"]["w"], convergence["distance_se"]["b"]]
        columns.append(("SGD off (SE)", [significant(v, 2) for v in distances]))
    width = max(len(n) for n in [*names, "feature"])
    widths = [max(len(title), *(len(v) for v in values)) for title, values in columns]
    lines = ["feature".ljust(width) + "".join(f"  {t:>{w}}" for (t, _), w in zip(columns, widths, strict=True))]
    for i, name in enumerate(names):
        cells = "".join(f"  {values[i]:>{w}}" for (_, values), w in zip(columns, widths, strict=True))
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def format_lines(summary: dict, rows: int) -> list[str]:
    """The lines under the table: losses, fit, methods, warnings and notes (one line each)."""
    loss_name = LOSS_NAMES[summary["loss"]]
    units = " (standardized)" if summary["loss_scale"] == "standardized" else ""
    line = f"{loss_name}{units} over {rows} training rows: SGD {significant(summary['train_loss'])}"
    optimum = summary["optimum"]
    if optimum is not None:
        line += f", exact optimum {significant(optimum['loss'])}"
        if summary["loss_gap"] is not None:
            line += f", so SGD is {summary['loss_gap']:+.2%} above it"
        else:
            line += f" (SGD {summary['loss_gap_absolute']:+.3g} above it)"
    lines = [line]
    if optimum is not None:
        fit = []
        if summary["r2"] is not None:
            fit.append(f"{summary['r2_name']} {summary['r2']:.4f}")
        if summary["condition_number"] is not None:
            fit.append(f"condition number {significant(summary['condition_number'], 3)} (standardized columns)")
        fit.append(f"{summary['df_resid']} residual degrees of freedom")
        lines.append("; ".join(fit))
        methods = f"estimate: {optimum['method']}"
        if summary["intervals"] is not None:
            methods += (
                f"; std errors: {summary['intervals']['covariance']}; intervals: {summary['intervals']['method']}"
            )
        lines.append(methods)
    elif summary["optimum_note"]:
        lines.append(summary["optimum_note"])
    lines += [f"note: {note}" for note in summary["notes"]]
    lines += [f"warning: {warning}" for warning in summary["warnings"]]
    return lines
