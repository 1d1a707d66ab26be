"""The regression analysis of a table: exact optimum, standard errors, p-values, intervals, fit and diagnostics.

``analyse`` runs, in float64: the moments; the design check (constant, aliased and collinear columns); the
exact optimum of the loss; its covariance (``stats.inference``) or a bootstrap; and R² (mse) or the pseudo-R²
of the loss (mae: Koenker and Machado's R¹ = 1 - Σ|r| / Σ|y - median y|; huber: the same with Huber's loss
around its location estimate). Degenerate tables (a constant target, no residual degrees of freedom, an exact
fit) finish with a note instead of standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lit_linreg.losses import HuberLoss, Loss, QuantileLoss, SquaredError, loss_of
from lit_linreg.stats.design import DesignCheck, check_design
from lit_linreg.stats.huber_bootstrap import huber_bootstrap_intervals, huber_bootstrap_obstacle, huber_bootstrap_wanted
from lit_linreg.stats.inference import bell_mccaffrey_df, bootstrap_fits, cluster_robust_covariance, t_statistics
from lit_linreg.stats.moments import Moments
from lit_linreg.stats.optimum import mean_loss
from lit_linreg.stats.rank_test import RANK_TEST_MAX_ROWS, monte_carlo_draws, rank_test_intervals
from lit_linreg.stats.rows import DesignRows
from lit_linreg.stats.wild_bootstrap import wild_bootstrap_intervals, wild_bootstrap_obstacle

EXACT_FIT_TOL = 1e-12  # residuals this small, in standard deviations of the target, are zero
# Least absolute deviations keeps ~13 float64 values a row (the interior point's vectors): on a table streamed
# from disk, above this many rows (1.3 GB of them) the exact optimum of mae (and any quantile) is skipped.
STREAMED_LAD_MAX_ROWS = 10_000_000


class TooBig(Exception):
    """The analysis would need more memory than the table itself was given: its message says what was skipped."""


@dataclass
class Coefficient:
    """One weight (or the bias) in the table's units. Statistics are None where they do not exist."""

    estimate: float
    std_error: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    low: float | None = None
    high: float | None = None
    per_sd: float | None = None  # the weight times the column's standard deviation: comparable across columns
    fitted: bool = True  # False for a column left out of the fit (constant or aliased)


@dataclass
class Analysis:
    n_rows: int
    n_parameters: int
    df_resid: int
    weights: list[Coefficient]
    bias: Coefficient
    method: str
    loss: float  # the mean loss at the optimum, in units of the standardized target
    covariance: str | None
    interval: str | None
    fit_measure: float | None
    fit_measure_name: str
    condition_number: float | None
    design: DesignCheck
    notes: list[str] = field(default_factory=list)
    cov_params: list[list[float]] | None = None  # of (w, b) in the table's units; 0 for a column left out
    residual_variance: float | None = None  # a new observation's variance around its mean (least squares)
    df_inference: int | None = None  # Student's t's degrees of freedom where not df_resid (clusters - 1)
    df_params: list[float | None] | None = None  # one a coefficient where they differ (Bell-McCaffrey), bias last


def analyse(
    x: Tensor,
    y: Tensor,
    names: list[str],
    loss: str,
    huber_k: float = 1.345,
    covariance_kind: str = "robust",
    bootstrap: int = 0,
    seed: int = 0,
    moments: Moments | None = None,
    materialize: bool = True,
    alpha: float = 0.05,
    quantile: float = 0.5,
    clusters: Tensor | None = None,
    case_weights: Tensor | None = None,
    monte_carlo_cutoff: bool = True,
    wild_bootstrap: bool = True,
    refitted_bootstrap: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Analysis:
    """The analysis of y ≈ X·w + b under ``loss``, intervals at level 1 - alpha; Huber's threshold is ``huber_k``
    times the residuals' MAD scale, estimated with the fit; the pinball loss's quantile is ``quantile``.
    ``clusters`` (each row's, coded 0, 1, ...) makes least squares' errors cluster-robust; ``case_weights`` (positive,
    one a row) weight every fit, each row's residual multiplied by the loss's ``row_scale`` of its weight.
    ``monte_carlo_cutoff`` draws the rank-score test's cutoff, where that test sets the intervals; false refers it
    to the normal (``stats.rank_test``; ``benchmarks/coverage.py`` measures both). ``wild_bootstrap`` takes least
    squares' robust intervals and p-values from the wild restricted bootstrap test (``stats.wild_bootstrap``); false
    from Student's t on Bell and McCaffrey's degrees of freedom. ``refitted_bootstrap`` takes Huber's, on tables of
    at most 5 rows a parameter within the refits' budget, from the same test with every draw refitted
    (``stats.huber_bootstrap``); false from the sandwich's t on Bell and McCaffrey's degrees of freedom, as on
    larger tables (``benchmarks/coverage.py --huber-bell-mccaffrey`` measures it). ``progress``, where given, is
    handed a line before a step that can take tens of seconds (Huber's refitted draws), so that a console is not
    silent meanwhile."""
    if clusters is not None and (loss != "mse" or bootstrap):
        raise ValueError("cluster-robust standard errors are least squares' and Student's t's, not a bootstrap's")
    if case_weights is not None and not materialize:
        raise ValueError("case weights need the rows in memory")
    objective = loss_of(loss, huber_k, quantile=quantile)
    moments = moments or Moments.of(x, y)
    design = check_design(moments, names)
    scale = None if case_weights is None else objective.row_scale(case_weights.double())
    rows = DesignRows(x, y, moments, design.kept, materialize=materialize, scale=scale)
    d, n, p = len(names), rows.n, rows.p
    notes: list[str] = []
    if not objective.streams and not materialize and n > STREAMED_LAD_MAX_ROWS:
        raise TooBig(
            f"exact {objective.name} optimum and inference skipped: quantile regression keeps ~13 values a row in "
            f"memory ({n * 104 / 2**30:.1f} GB for {n} rows), more than this memory-mapped table allows; mse and "
            "huber stream"
        )
    if moments.y_std == 0:
        notes.append(f"the target is constant ({moments.y_mean:.6g}): every weight is 0 and nothing can be inferred")
        beta, method = torch.zeros(p, dtype=torch.float64), "constant target"
        objective = objective.at_scale(1.0)  # every residual is 0, at any scale
    else:
        fit = objective.exact_fit(rows)
        beta, method = fit.beta, fit.method if case_weights is None else f"weighted {fit.method}"
        if fit.loss is not None:  # the fit estimated the loss's scale: the loss at the optimum is at that scale
            objective = fit.loss
            scale = fit.loss.scale * (moments.y_std or 1.0)
            notes.append(
                f"Huber's threshold: k = {fit.loss.k:g} times the residuals' MAD scale {scale:.5g} = "
                f"{fit.loss.k * scale:.5g} in the target's units"
            )
    weights, bias = rows.weights_to_original(beta, d)
    estimates = [*weights.tolist(), bias]
    optimum_loss = mean_loss(rows, beta, objective)
    analysis = Analysis(
        n_rows=n,
        n_parameters=p,
        df_resid=n - p,
        weights=[Coefficient(w, fitted=j in design.kept) for j, w in enumerate(estimates[:-1])],
        bias=Coefficient(estimates[-1]),
        method=method,
        loss=optimum_loss,
        covariance=None,
        interval=None,
        fit_measure=None if moments.y_std == 0 else _fit_measure(rows, beta, objective, case_weights is not None),
        fit_measure_name=objective.fit_measure_name,
        condition_number=design.condition_number,
        design=design,
        notes=notes,
    )
    for j, c in enumerate(analysis.weights):
        c.per_sd = c.estimate * float(moments.x_std[j]) if c.fitted else None
    if moments.y_std == 0:
        return analysis
    if n - p <= 0:
        notes.append(
            f"{n} rows for {p} parameters: the optimum fits every row exactly, with no residual degrees of freedom "
            "left to estimate standard errors"
        )
        return analysis
    largest_residual = max(float((t - dm @ beta).abs().max()) for dm, t in rows.blocks())
    if largest_residual <= EXACT_FIT_TOL:
        notes.append("the optimum fits every row exactly (all residuals are 0): there is no uncertainty to estimate")
        return analysis
    if clusters is not None and int(clusters.max()) == 0:
        notes.append("every row is in one cluster: there are no cluster-robust standard errors to estimate")
        return analysis
    _infer(
        analysis,
        rows,
        beta,
        objective,
        covariance_kind,
        bootstrap,
        seed,
        alpha,
        clusters,
        monte_carlo_cutoff,
        wild_bootstrap,
        refitted_bootstrap,
        progress,
    )
    return analysis


def huber_scale(
    x: Tensor, y: Tensor, statistics, k: float, materialize: bool = True, case_weights: Tensor | None = None
) -> float:
    """The residuals' MAD scale at the Huber M-estimate of these rows (the table's units): what the analysis will
    find, computed before training so that SGD minimises the same loss."""
    if statistics.moments.y_std == 0:
        return 1.0
    scale = None if case_weights is None else loss_of("huber", k).row_scale(case_weights.double())
    rows = DesignRows(x, y, statistics.moments, statistics.design.kept, materialize=materialize, scale=scale)
    fit = loss_of("huber", k).exact_fit(rows)
    return fit.loss.scale * statistics.moments.y_std


def _infer(
    analysis: Analysis,
    rows: DesignRows,
    beta: Tensor,
    loss: Loss,
    covariance_kind: str,
    bootstrap: int,
    seed: int,
    alpha: float,
    clusters: Tensor | None,
    monte_carlo_cutoff: bool,
    wild_bootstrap: bool,
    refitted_bootstrap: bool,
    progress: Callable[[str], None] | None,
) -> None:
    d = len(analysis.weights)
    jacobian, offset = rows.jacobian(d)
    theta = jacobian @ beta + offset
    df = analysis.df_resid
    if clusters is not None:
        groups = int(clusters.max()) + 1
        covariance = cluster_robust_covariance(rows, beta, clusters, groups)
        analysis.covariance = f"cluster-robust sandwich (CR1, {groups} clusters)"
        df = analysis.df_inference = groups - 1
    else:
        covariance, analysis.covariance = loss.covariance(rows, beta, covariance_kind)
    cov = jacobian @ covariance @ jacobian.T
    std_error = cov.diagonal().clamp(min=0).sqrt()
    analysis.interval = f"Student's t, {df} degrees of freedom"
    robust = clusters is None and covariance_kind == "robust"
    # Least squares' robust intervals, and Huber's on request on tables of at most 5 rows a parameter: the wild
    # bootstrap's test inverted, within its budget of draws.
    wild = robust and wild_bootstrap and not bootstrap and isinstance(loss, SquaredError)
    wild_obstacle = wild_bootstrap_obstacle(rows, alpha) if wild else None
    drawn = wild and wild_obstacle is None
    refit = robust and refitted_bootstrap and not bootstrap and isinstance(loss, HuberLoss)
    refit = refit and huber_bootstrap_wanted(rows.n, rows.p)
    refit_obstacle = huber_bootstrap_obstacle(rows, loss, jacobian, std_error, alpha) if refit else None
    refitted = refit and refit_obstacle is None
    if robust and not drawn and not refitted and not isinstance(loss, QuantileLoss):
        df = _bell_mccaffrey(analysis, rows, beta, loss, jacobian)
        if wild:
            analysis.interval += f" (the wild bootstrap's draws skipped: {wild_obstacle})"
        if refit:
            analysis.interval += f" (the refitted wild bootstrap's draws skipped: {refit_obstacle})"
    statistic, p_value, low, high = t_statistics(theta, std_error, df, alpha)
    analysis.cov_params = cov.tolist()
    y_std = rows.moments.y_std if rows.moments.y_std > 0 else 1.0
    variance = loss.residual_variance(rows, beta)
    analysis.residual_variance = None if variance is None else variance * y_std**2
    if bootstrap:
        fits = bootstrap_fits(rows, loss, bootstrap, seed, d)
        low, high = torch.quantile(fits, torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64), dim=0)
        analysis.interval = f"percentile bootstrap, {bootstrap} resamples of the rows"
    elif drawn:
        low, high, p_value, analysis.interval = wild_bootstrap_intervals(rows, beta, jacobian, theta, alpha, seed)
    elif refitted:
        if progress is not None:
            shape, draws = f"{rows.n} rows, {rows.p} parameters", monte_carlo_draws(alpha)
            progress(f"analysis: Huber's intervals refit {draws} draws at each value tried ({shape})")
        low, high, p_value, analysis.interval = huber_bootstrap_intervals(
            rows, loss, jacobian, offset, theta, std_error, alpha, seed
        )
    elif _rank_test_applies(loss, rows, covariance_kind):
        low, high, p_value, analysis.interval = rank_test_intervals(
            rows, jacobian, offset, theta, std_error, loss.tau, alpha, monte_carlo_cutoff, seed
        )
    for j, c in enumerate([*analysis.weights, analysis.bias]):
        if not c.fitted:
            continue
        c.std_error, c.statistic, c.p_value = float(std_error[j]), float(statistic[j]), float(p_value[j])
        c.low, c.high = float(low[j]), float(high[j])


def _bell_mccaffrey(analysis: Analysis, rows: DesignRows, beta: Tensor, loss: Loss, jacobian: Tensor) -> Tensor | int:
    """The HC2 sandwich's t's degrees of freedom for each coefficient (a row of the Jacobian is its contrast of
    β), kept in the analysis and their range in the interval's name; df_resid where the table is too large."""
    per_coefficient = bell_mccaffrey_df(rows, beta, loss, jacobian)
    if per_coefficient is None:
        analysis.interval += " (Bell-McCaffrey's skipped: too many rows x columns³)"
        return analysis.df_resid
    fitted = per_coefficient[torch.isfinite(per_coefficient)]  # a column left out has none (NaN)
    # (Σλ)²/Σλ² of n - p eigenvalues is in (0, n - p]: outside, the sums lost their digits (none seen in tests).
    if len(fitted) == 0 or not bool(((fitted > 0) & (fitted <= analysis.df_resid * (1 + 1e-9))).all()):
        analysis.interval += " (Bell-McCaffrey's lost precision on this design)"
        return analysis.df_resid
    analysis.df_params = [float(v) if math.isfinite(v) else None for v in per_coefficient.tolist()]
    fewest, most = (_degrees(float(v)) for v in fitted.aminmax())
    analysis.interval = f"Student's t, Bell-McCaffrey degrees of freedom ({fewest} to {most})"
    return per_coefficient


def _degrees(df: float) -> str:
    """3.27, 13.6, 431, 32,810: three significant digits, never in powers of ten."""
    return f"{df:,.0f}" if df >= 100 else f"{df:.3g}"


def _rank_test_applies(loss: Loss, rows: DesignRows, covariance_kind: str) -> bool:
    """Quantile regression's default intervals below 1,001 rows, as R's: the rank-score test's (its sandwich
    gives the standard errors, and the intervals and p-values from there on). It needs the rows in memory and a
    column besides the intercept (R's too). (Clusters are least squares' only: ``analyse`` refuses them here.)"""
    return (
        isinstance(loss, QuantileLoss)
        and covariance_kind == "robust"
        and rows.n <= RANK_TEST_MAX_ROWS
        and rows.p > 1
        and rows.matrix() is not None
    )


def _fit_measure(rows: DesignRows, beta: Tensor, loss: Loss, weighted: bool = False) -> float | None:
    """1 - the loss at the optimum / the loss of the best constant (R² for least squares). With case weights the
    best constant is the weighted fit of the intercept alone (statsmodels' WLS R² for least squares)."""
    if weighted:
        constant = DesignRows.from_matrix(rows.matrix()[:, -1:], rows.t, rows)  # the (scaled) intercept alone
        baseline = mean_loss(constant, loss.exact_fit(constant).beta, loss) * rows.n
    else:
        baseline = loss.baseline(rows.t)
    fitted = mean_loss(rows, beta, loss) * rows.n
    return 1 - fitted / baseline if baseline > 0 else None
