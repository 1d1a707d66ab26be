"""The report as a person reads it: the regression table and the lines under it, as text or HTML.

The table reads like statsmodels' ``summary()``: for each weight and the bias, the estimate (the exact optimum),
its standard error, p-value and (1 - alpha) interval, the effect of one standard deviation of the column, then
the weight SGD learned and its distance from the estimate in standard errors. Numbers have 5 significant digits,
so an effect of -1.7e-5 per unit is printed as such, not as -0.0000. Everything shown is read from a
``Regression``.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lit_linreg.losses import title_of

if TYPE_CHECKING:
    from lit_linreg.regression import Regression


class Summary:
    """``Regression.summary()``: the CLI's text (``str``), or an HTML table in Jupyter."""

    def __init__(self, result: Regression) -> None:
        self.result = result

    def __str__(self) -> str:
        return "\n".join([format_table(self.result), *format_lines(self.result)])

    __repr__ = __str__

    def as_text(self) -> str:
        return str(self)

    def as_html(self) -> str:
        titles, rows = table_cells(self.result)
        head = "".join(f"<th>{html.escape(t)}</th>" for t in ["", *titles])
        body = "".join(
            f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{html.escape(v)}</td>" for v in cells) + "</tr>"
            for name, cells in rows
        )
        lines = "".join(f"<br>{html.escape(line)}" for line in format_lines(self.result))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{lines[4:]}</p>"

    _repr_html_ = as_html


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


def table_cells(result: Regression) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The table's column titles, and for each weight and the bias its name and cells."""
    columns: list[tuple[str, list[str]]] = []
    optimum = result.optimum
    if result.truth is not None:
        columns.append(("true", [significant(v) for v in result.truth]))
    if optimum is not None:
        fitted = [*optimum.fitted, True]
        estimates = [significant(v) if f else "(left out)" for v, f in zip(optimum.estimates, fitted, strict=True)]
        columns.append(("estimate", estimates))
        if optimum.std_errors is not None:
            low, high = f"{result.alpha / 2:.4g}", f"{1 - result.alpha / 2:.4g}"
            columns.append(("std err", [significant(v, 3) for v in optimum.std_errors]))
            title = "P(rank)" if optimum.rank_tested else "P(wild)" if optimum.wild_bootstrapped else "P>|t|"
            columns.append((title, [p_value(v) for v in optimum.p_values]))
            columns.append((f"[{low}", [significant(v) for v in optimum.lower]))
            columns.append((f"{high}]", [significant(v) for v in optimum.upper]))
        columns.append(("per SD", [significant(v, 4) for v in [*optimum.per_sd, None]]))
    columns.append(("SGD", [significant(v) for v in result.learned]))
    if result.convergence is not None:
        columns.append(("SGD off (SE)", [significant(v, 2) for v in result.convergence.distances]))
    titles = [title for title, _ in columns]
    return titles, [(name, [values[i] for _, values in columns]) for i, name in enumerate(result.index)]


def format_table(result: Regression) -> str:
    """The first line names the method; then one line per weight and the bias."""
    titles, rows = table_cells(result)
    width = max(len(n) for n in [*result.index, "feature"])
    widths = [max(len(title), *(len(cells[k]) for _, cells in rows)) for k, title in enumerate(titles)]
    lines = [title_line(result)]
    lines.append("feature".ljust(width) + "".join(f"  {t:>{w}}" for t, w in zip(titles, widths, strict=True)))
    for name, cells in rows:
        lines.append(name.ljust(width) + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)


def title_line(result: Regression) -> str:
    """What was fitted, by which method, on how many rows."""
    method = (
        result.optimum.method
        if result.optimum is not None
        else f"SGD on the {title_of(result.loss, result.quantile or 0.5)}"
    )
    columns = len(result.feature_names)
    return (
        f"{method[0].upper()}{method[1:]}: {result.target} on {columns} column{'s' * (columns != 1)} and a bias, "
        f"{result.nobs} rows"
    )


def format_lines(result: Regression) -> list[str]:
    """The lines under the table: losses, fit, methods, warnings and notes (one line each)."""
    units = " (standardized)" if result.loss_scale == "standardized" else ""
    title = title_of(result.loss, result.quantile or 0.5)
    line = f"{title}{units} over {result.n_train} training rows: SGD {significant(result.train_loss)}"
    optimum = result.optimum
    if optimum is not None:
        line += f", exact optimum {significant(optimum.loss)}"
        if result.loss_gap is not None:
            line += f", so SGD is {result.loss_gap:+.2%} above it"
        else:
            line += f" (SGD {result.loss_gap_absolute:+.3g} above it)"
    lines = [line]
    if optimum is not None:
        fit = []
        if optimum.fit_measure is not None:
            fit.append(f"{optimum.fit_measure_name} {optimum.fit_measure:.4f}")
        if optimum.condition_number is not None:
            fit.append(f"condition number {significant(optimum.condition_number, 3)} (standardized columns)")
        fit.append(f"{optimum.df_resid} residual degrees of freedom")
        lines.append("; ".join(fit))
        methods = f"estimate: {optimum.method}"
        if optimum.std_errors is not None:
            methods += f"; std errors: {optimum.covariance}; {level(result.alpha)} intervals: {optimum.interval}"
        lines.append(methods)
    elif result.optimum_note:
        lines.append(result.optimum_note)
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"warning: {warning}" for warning in result.warnings]
    return lines


def level(alpha: float) -> str:
    """An interval's confidence level in words: 0.05 is "95%"."""
    return f"{100 * (1 - alpha):.4g}%"
