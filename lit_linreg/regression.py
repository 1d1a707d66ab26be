"""``Regression``: the one result of a fit, which every output reads.

It holds, for each weight and the bias, the exact optimum with its standard error, t, p-value and interval; the
fit measures and diagnostics; what SGD learned and how far that is from the optimum; the plan the run followed;
its warnings and notes. The CLI's table, ``summary.json`` (``to_dict``), ``report.png``, TensorBoard's report,
``predict`` and a notebook's ``summary()`` are views of it. Names follow statsmodels' ``RegressionResults``
where it has them (``params``, ``bse``, ``tvalues``, ``pvalues``, ``conf_int``, ``rsquared``, ``nobs``,
``df_resid``, ``condition_number``), indexed by column name, the bias last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas, torch and Lightning are imported where they are used: `import lit_linreg` stays fast
    import pandas as pd

    from lit_linreg.model import LinearRegression
    from lit_linreg.stats.analysis import Analysis

BIAS = "bias"
# The verdict: SGD has converged when every weight is within this many standard errors of the exact optimum
# and its loss within this share of the optimum's.
CONVERGED_SE = 0.5
CONVERGED_GAP = 0.01


@dataclass(frozen=True)
class Optimum:
    """The exact optimum of the loss on the training rows and its inference; one entry per weight, then the bias.

    Statistics are ``None`` where they do not exist (a column left out, no residual degrees of freedom).
    """

    estimates: list[float]
    fitted: list[bool]  # False for a column left out of the fit (constant or aliased); the bias is always fitted
    loss: float
    method: str
    per_sd: list[float | None]  # per weight: its estimate times the column's standard deviation
    fit_measure: float | None
    fit_measure_name: str
    nobs: int
    df_resid: int
    condition_number: float | None
    std_errors: list[float | None] | None = None
    t_values: list[float | None] | None = None
    p_values: list[float | None] | None = None
    lower: list[float | None] | None = None
    upper: list[float | None] | None = None
    covariance: str | None = None
    interval: str | None = None
    cov_params: list[list[float]] | None = None  # the estimates' covariance, in the table's units
    residual_variance: float | None = None  # least squares: s², a new observation's variance around its mean
    df_inference: int | None = None  # Student's t's degrees of freedom where not df_resid (clusters - 1)
    df_params: list[float | None] | None = None  # one a coefficient where they differ (Bell and McCaffrey's)

    @property
    def t_df(self) -> int:
        """The degrees of freedom of a t with no per-coefficient value: df_resid, or clusters - 1 with
        cluster-robust errors."""
        return self.df_resid if self.df_inference is None else self.df_inference

    @property
    def coefficient_dfs(self) -> list[float | None]:
        """Each coefficient's t's degrees of freedom: Bell and McCaffrey's where the table used them, else t_df."""
        return list(self.df_params) if self.df_params is not None else [self.t_df] * len(self.estimates)

    @property
    def rank_tested(self) -> bool:
        """Whether the intervals and p-values invert the rank-score test (quantiles below 1,001 rows)."""
        return _rank_tested(self.interval)

    @property
    def wild_bootstrapped(self) -> bool:
        """Whether the intervals and p-values invert the wild restricted bootstrap test (least squares' robust
        default within its budget of draws; Huber's, its draws refitted, on tables of at most 5 rows a parameter)."""
        return _wild_bootstrapped(self.interval)


@dataclass(frozen=True)
class Convergence:
    """How far SGD's weights are from the exact optimum, in its standard errors, and whether that is converged."""

    distances: list[float | None]  # per weight, then the bias
    max_distance: float | None
    converged: bool | None
    warning: str | None


@dataclass(frozen=True)
class Regression:
    """The result of a fit: ``lit_linreg.fit`` returns it, ``train.py fit`` prints it and writes it.

    Attributes:
        feature_names: one per weight (``column=level`` for an indicator), in the model's order.
        target: the column predicted.
        loss: ``mse``, ``mae``, ``huber`` or ``quantile``.
        quantile: the quantile τ the pinball loss predicts (``loss == "quantile"``; None otherwise).
        alpha: the intervals' level is 1 - alpha.
        learned: SGD's weights, then its bias, in the table's units.
        train_loss: SGD's mean loss on the training rows (in training units: see ``loss_scale``).
        optimum: the exact optimum and its inference (``None`` when skipped: ``optimum_note`` says why).
        convergence: SGD's distance from the optimum (``None`` without an optimum).
        truth: the planted weights, then the bias, when the rows were planted.
    """

    feature_names: list[str]
    target: str
    loss: str
    loss_scale: str
    alpha: float
    learned: list[float]
    train_loss: float
    column_std: list[float]
    n_train: int
    optimum: Optimum | None = None
    optimum_note: str | None = None
    convergence: Convergence | None = None
    truth: list[float] | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference_levels: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    epochs: int = 0
    global_step: int = 0
    fit_seconds: float = 0.0
    analysis_seconds: float = 0.0
    interrupted: bool = False
    quantile: float | None = None
    model: LinearRegression | None = field(default=None, repr=False, compare=False)
    data_settings: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------------------------------------------------
    # Building it

    @classmethod
    def build(
        cls,
        *,
        analysis: Analysis | None,
        optimum_loss: float | None,
        alpha: float,
        notes: list[str],
        **fields: Any,
    ) -> Regression:
        """The result of a run: the analysis (when made) beside what SGD learned, and the verdict between them."""
        result = cls(alpha=alpha, notes=list(notes), **fields)
        if result.interrupted:  # the report of a stopped run: its weights are those so far
            stopped = f"interrupted at step {result.global_step}: SGD's weights are those it had reached"
            result = replace(result, warnings=[stopped, *result.warnings])
        if analysis is None:
            return result
        coefficients = [*analysis.weights, analysis.bias]
        inferred = analysis.bias.std_error is not None

        def column(name: str) -> list | None:
            return [getattr(c, name) for c in coefficients] if inferred else None

        optimum = Optimum(
            estimates=[c.estimate for c in coefficients],
            fitted=[c.fitted for c in analysis.weights],
            loss=optimum_loss,
            method=analysis.method,
            per_sd=[c.per_sd for c in analysis.weights],
            fit_measure=analysis.fit_measure,
            fit_measure_name=analysis.fit_measure_name,
            nobs=analysis.n_rows,
            df_resid=analysis.df_resid,
            condition_number=analysis.condition_number,
            std_errors=column("std_error"),
            t_values=column("statistic"),
            p_values=column("p_value"),
            lower=column("low"),
            upper=column("high"),
            covariance=analysis.covariance,
            interval=analysis.interval,
            cov_params=analysis.cov_params,
            residual_variance=analysis.residual_variance,
            df_inference=analysis.df_inference,
            df_params=analysis.df_params,
        )
        result = replace(result, optimum=optimum, notes=[*result.notes, *analysis.notes])
        convergence = _verdict(result)
        warnings = [
            *result.warnings,
            *analysis.design.warnings,
            *([convergence.warning] if convergence.warning else []),
        ]
        return replace(result, convergence=convergence, warnings=warnings)

    # ------------------------------------------------------------------------------------------------------------
    # statsmodels' names

    @property
    def index(self) -> list[str]:
        return [*self.feature_names, BIAS]

    @property
    def params(self) -> pd.Series:
        """The exact optimum's weights and bias (NaN for a column left out)."""
        optimum = self._require_optimum("params")
        estimates = [
            v if fitted else math.nan for v, fitted in zip(optimum.estimates, [*optimum.fitted, True], strict=True)
        ]
        return self._series(estimates, "params")

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params``."""
        return self._series(self._inferred("bse").std_errors, "bse")

    @property
    def tvalues(self) -> pd.Series:
        """``params`` / ``bse`` (where the rank-score or the wild bootstrap test gives the p-values, not theirs)."""
        return self._series(self._inferred("tvalues").t_values, "tvalues")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the t statistics (Student's t on ``df_resid`` degrees of freedom, clusters - 1, or
        Bell and McCaffrey's, one a coefficient, with Huber's robust errors), or of the test the intervals invert:
        the wild restricted bootstrap's of HC2's t (least squares' robust errors) or of Huber's sandwich t, its draws
        refitted (Huber's robust errors on tables of at most 5 rows a parameter), or the rank-score test's
        (quantiles below 1,001 rows)."""
        return self._series(self._inferred("pvalues").p_values, "pvalues")

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """The (1 - alpha) intervals, columns ``lower`` and ``upper``; ``alpha`` defaults to the fit's.

        At the fit's own level they are the report's (bootstrap percentiles when it bootstrapped, the wild bootstrap
        test's inversion for least squares' robust errors and for Huber's on tables of at most 5 rows a parameter,
        the rank-score test's for quantiles below 1,001 rows); at
        another, Student's t with the same standard errors and degrees of freedom, where the report's were those
        (a bootstrap's draws and the tests' rows are not kept: refit at that level).
        """
        optimum = self._inferred("conf_int")
        alpha = self.alpha if alpha is None else alpha
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if math.isclose(alpha, self.alpha, rel_tol=0, abs_tol=1e-15):
            lower, upper = optimum.lower, optimum.upper
        elif optimum.interval and optimum.interval.startswith("Student"):
            quantiles = [None if df is None else _t_quantile(alpha, df) for df in optimum.coefficient_dfs]
            shifts = list(zip(optimum.estimates, optimum.std_errors, quantiles, strict=True))
            lower = [_shift(v, s, -q) for v, s, q in shifts]
            upper = [_shift(v, s, q) for v, s, q in shifts]
        else:
            raise ValueError(
                f"the intervals are {optimum.interval} at alpha {self.alpha:g}; refit with report alpha {alpha:g}"
            )
        import pandas as pd

        return pd.DataFrame({"lower": _nan(lower), "upper": _nan(upper)}, index=self.index)

    def cov_params(self) -> pd.DataFrame:
        """The covariance of ``params`` (the standard errors' sandwich or classical form, as named)."""
        import pandas as pd

        optimum = self._inferred("cov_params")
        if optimum.cov_params is None:
            raise ValueError("cov_params: this result does not hold it (written by an older lit_linreg)")
        return pd.DataFrame(optimum.cov_params, index=self.index, columns=self.index)

    @property
    def rsquared(self) -> float | None:
        """R² for least squares; for mae and huber the pseudo-R² that ``rsquared_name`` names."""
        return None if self.optimum is None else self.optimum.fit_measure

    @property
    def rsquared_name(self) -> str | None:
        return None if self.optimum is None else self.optimum.fit_measure_name

    @property
    def nobs(self) -> int:
        """Training rows used (after rows with missing cells were dropped)."""
        return self.optimum.nobs if self.optimum is not None else self.n_train

    @property
    def df_resid(self) -> int | None:
        return None if self.optimum is None else self.optimum.df_resid

    @property
    def condition_number(self) -> float | None:
        """Of the standardized columns' correlation matrix."""
        return None if self.optimum is None else self.optimum.condition_number

    # ------------------------------------------------------------------------------------------------------------
    # What SGD learned

    @property
    def sgd_params(self) -> pd.Series:
        """SGD's weights and bias in the table's units: what ``predict`` uses."""
        return self._series(self.learned, "sgd_params")

    @property
    def sgd_distance(self) -> pd.Series:
        """|SGD - optimum| / standard error, per weight and the bias (NaN where there is no standard error)."""
        if self.convergence is None:
            raise ValueError("no exact optimum was computed, so there is no distance to it")
        return self._series(self.convergence.distances, "sgd_distance")

    @property
    def converged(self) -> bool | None:
        """Every weight within 0.5 standard errors of the optimum and the loss within 1% of it."""
        return None if self.convergence is None else self.convergence.converged

    @property
    def loss_gap_absolute(self) -> float | None:
        return None if self.optimum is None else self.train_loss - self.optimum.loss

    @property
    def loss_gap(self) -> float | None:
        """SGD's loss above the optimum's, as a share of it (None when the optimum's loss is zero)."""
        if self.optimum is None:
            return None
        # A ratio to a zero (or float-noise) optimum loss means nothing: then only the absolute gap is reported.
        if self.optimum.loss > 1e-12 * max(self.train_loss, 1e-300):
            return self.loss_gap_absolute / self.optimum.loss
        return None

    # ------------------------------------------------------------------------------------------------------------
    # Views

    def summary(self):
        """The report as the CLI prints it; in Jupyter, as an HTML table."""
        from lit_linreg.report import Summary

        return Summary(self)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def to_dict(self) -> dict[str, Any]:
        """``summary.json``: every number of the report, JSON-safe (None where a number does not exist)."""
        optimum, convergence = self.optimum, self.convergence
        inferred = optimum is not None and optimum.std_errors is not None

        def split(values: list) -> dict[str, Any]:
            return {"w": list(values[:-1]), "b": values[-1]}

        summary: dict[str, Any] = {
            "feature_names": list(self.feature_names),
            "target": self.target,
            "column_std": list(self.column_std),
            "learned": split(self.learned),
            "true": None if self.truth is None else split(self.truth),
            "loss": self.loss,
            "quantile": self.quantile,
            "loss_scale": self.loss_scale,
            "alpha": self.alpha,
            "train_loss": self.train_loss,
            "n_train": self.n_train,
            "optimum": None,
            "optimum_note": self.optimum_note,
            "loss_gap": self.loss_gap,
            "loss_gap_absolute": self.loss_gap_absolute,
            "intervals": None,
            "std_errors": None,
            "t_values": None,
            "p_values": None,
            "per_sd": None,
            "r2": self.rsquared,
            "r2_name": self.rsquared_name,
            "n_rows": None if optimum is None else optimum.nobs,
            "df_resid": self.df_resid,
            "df_inference": None if optimum is None else optimum.df_inference,
            "df_params": None if optimum is None or optimum.df_params is None else split(optimum.df_params),
            "condition_number": self.condition_number,
            "convergence": None,
            "cov_params": None if optimum is None else optimum.cov_params,
            "residual_variance": None if optimum is None else optimum.residual_variance,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "reference_levels": dict(self.reference_levels),
            "epochs": self.epochs,
            "global_step": self.global_step,
            "fit_seconds": self.fit_seconds,
            "analysis_seconds": self.analysis_seconds,
            "interrupted": self.interrupted,
            "plan": self.plan,
        }
        if optimum is not None:
            summary["optimum"] = {
                **split(optimum.estimates),
                "loss": optimum.loss,
                "method": optimum.method,
                "fitted": list(optimum.fitted),
            }
            summary["per_sd"] = {"w": list(optimum.per_sd)}
        if inferred:
            bounds = [None if lo is None else [lo, hi] for lo, hi in zip(optimum.lower, optimum.upper, strict=True)]
            summary["std_errors"] = split(optimum.std_errors)
            summary["t_values"] = split(optimum.t_values)
            summary["p_values"] = split(optimum.p_values)
            summary["intervals"] = {**split(bounds), "method": optimum.interval, "covariance": optimum.covariance}
        if convergence is not None:
            summary["convergence"] = {
                "distance_se": split(convergence.distances),
                "max_distance_se": convergence.max_distance,
                "converged": convergence.converged,
                "threshold_se": CONVERGED_SE,
                "threshold_gap": CONVERGED_GAP,
                "warning": convergence.warning,
            }
        return _json_safe(summary)

    @classmethod
    def from_dict(cls, summary: dict[str, Any], **extra: Any) -> Regression:
        """The result ``to_dict`` wrote (``summary.json``, or a checkpoint's copy of it)."""

        def joined(part: dict | None) -> list | None:
            return None if part is None else [*part["w"], part["b"]]

        optimum = None
        saved = summary.get("optimum")
        if saved is not None:
            intervals = summary.get("intervals")
            bounds = joined(intervals)
            optimum = Optimum(
                estimates=joined(saved),
                fitted=list(saved["fitted"]),
                loss=saved["loss"],
                method=saved["method"],
                per_sd=list(summary["per_sd"]["w"]),
                fit_measure=summary["r2"],
                fit_measure_name=summary["r2_name"],
                nobs=summary["n_rows"],
                df_resid=summary["df_resid"],
                df_inference=summary.get("df_inference"),
                df_params=joined(summary.get("df_params")),
                condition_number=summary["condition_number"],
                std_errors=joined(summary.get("std_errors")),
                t_values=joined(summary.get("t_values")),
                p_values=joined(summary.get("p_values")),
                lower=None if bounds is None else [_end(b, 0, intervals["method"]) for b in bounds],
                upper=None if bounds is None else [_end(b, 1, intervals["method"]) for b in bounds],
                covariance=None if intervals is None else intervals["covariance"],
                interval=None if intervals is None else intervals["method"],
                cov_params=summary.get("cov_params"),
                residual_variance=summary.get("residual_variance"),
            )
        convergence = None
        verdict = summary.get("convergence")
        if verdict is not None:
            convergence = Convergence(
                joined(verdict["distance_se"]), verdict["max_distance_se"], verdict["converged"], verdict["warning"]
            )
        return cls(
            feature_names=list(summary["feature_names"]),
            target=summary["target"],
            loss=summary["loss"],
            quantile=summary.get("quantile"),
            loss_scale=summary["loss_scale"],
            alpha=summary.get("alpha", 0.05),
            learned=joined(summary["learned"]),
            train_loss=summary["train_loss"],
            column_std=list(summary["column_std"]),
            n_train=summary.get("n_train", summary.get("n_rows") or 0),
            optimum=optimum,
            optimum_note=summary["optimum_note"],
            convergence=convergence,
            truth=joined(summary["true"]),
            warnings=list(summary["warnings"]),
            notes=list(summary["notes"]),
            reference_levels=dict(summary.get("reference_levels") or {}),
            plan=summary.get("plan"),
            epochs=summary.get("epochs", 0),
            global_step=summary.get("global_step", 0),
            fit_seconds=summary.get("fit_seconds", 0.0),
            analysis_seconds=summary.get("analysis_seconds", 0.0),
            interrupted=summary.get("interrupted", False),
            **extra,
        )

    # ------------------------------------------------------------------------------------------------------------
    # Predicting and keeping

    def predict(self, data: Any, interval: str | None = None, alpha: float | None = None) -> pd.Series | pd.DataFrame:
        """Predictions of the target from SGD's weights (as ``train.py predict`` makes them) for new rows.

        ``data``: what ``lit_linreg.fit`` takes (a pandas or polars DataFrame, a pyarrow Table, a file's path, or
        an array of the feature columns in the model's order). Categorical columns are turned into the fit's
        indicator columns; a level the fit did not see is refused in one line. Rows with a missing input are
        refused, or predicted as NaN when the fit used ``missing="drop"``.

        ``interval``: ``"confidence"`` (for the mean at those rows) or ``"prediction"`` (for a new observation,
        least squares only) adds, at level 1 - ``alpha`` (the fit's by default), the exact optimum's prediction
        (``<target>_estimate``) and the interval around it (``<target>_lower``, ``<target>_upper``): Student's t
        on ``df_resid`` degrees of freedom (clusters - 1 with clusters) with ``cov_params()``, as statsmodels'
        ``get_prediction(x).summary_frame(alpha)``; a prediction interval adds ``residual_variance``. (The wild
        bootstrap and Bell and McCaffrey's degrees of freedom, which the table's robust intervals use, need the
        training rows, which the result does not keep.)
        """
        from lit_linreg.inputs import prediction_rows

        model = self._require_model("predict")
        x, complete, index = prediction_rows(data, self.data_settings, self.feature_names)
        import numpy as np
        import pandas as pd
        import torch

        with torch.no_grad():
            columns = {f"{self.target}_prediction": model(torch.from_numpy(x)).numpy()}
        if interval is not None:
            columns.update(self.interval_at(x, interval, self.alpha if alpha is None else alpha))
        if complete is not None:  # rows with a missing input: NaN in every column
            for name, values in columns.items():
                full = np.full(len(complete), np.nan)
                full[complete] = values
                columns[name] = full
        if interval is None:
            return pd.Series(columns[f"{self.target}_prediction"], index=index, name=f"{self.target}_prediction")
        return pd.DataFrame(columns, index=index)

    def interval_at(self, x, kind: str, alpha: float) -> dict[str, Any]:
        """For rows of the model's inputs: ``<target>_estimate``, ``_lower`` and ``_upper`` (see ``predict``)."""
        import numpy as np

        if kind not in ("confidence", "prediction"):
            raise ValueError(f"interval must be confidence or prediction, got {kind!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        optimum = self._inferred("an interval")
        if optimum.cov_params is None:
            raise ValueError("intervals need cov_params, which this result does not hold (an older lit_linreg)")
        rows = np.c_[x, np.ones(len(x))]
        estimate = rows @ np.asarray(optimum.estimates)  # a column left out has the estimate 0
        variance = np.einsum("ij,jk,ik->i", rows, np.asarray(optimum.cov_params), rows)
        if kind == "prediction":
            if optimum.residual_variance is None:
                raise ValueError(
                    f"a prediction interval for a new observation needs least squares' residual variance; the "
                    f"{self.loss} fit gives a confidence interval for its fitted value (interval='confidence')"
                )
            variance = variance + optimum.residual_variance
        half = _t_quantile(alpha, optimum.t_df) * np.sqrt(variance)
        return {
            f"{self.target}_estimate": estimate,
            f"{self.target}_lower": estimate - half,
            f"{self.target}_upper": estimate + half,
        }

    def save(self, path: str | Path) -> Path:
        """A checkpoint with the model and this result: ``lit_linreg.load`` reads it, ``train.py predict
        --ckpt_path`` and ``test`` accept it. Written atomically (a temporary file renamed)."""
        from lit_linreg.api import save

        return save(self, path)

    # ------------------------------------------------------------------------------------------------------------

    def _series(self, values: list | None, name: str) -> pd.Series:
        import pandas as pd

        if values is None:  # a summary.json from before the value was kept
            raise ValueError(f"{name}: this result does not hold it (written by an older lit_linreg)")

        return pd.Series(_nan(values), index=self.index, name=name, dtype="float64")

    def _require_optimum(self, what: str) -> Optimum:
        if self.optimum is None:
            raise ValueError(f"{what}: no exact optimum was computed ({self.optimum_note})")
        return self.optimum

    def _inferred(self, what: str) -> Optimum:
        optimum = self._require_optimum(what)
        if optimum.std_errors is None:
            reason = "; ".join(self.notes) or "no inference was made"
            raise ValueError(f"{what}: there are no standard errors ({reason})")
        return optimum

    def _require_model(self, what: str) -> LinearRegression:
        if self.model is None:
            raise ValueError(f"{what} needs the model: load the result from its checkpoint (lit_linreg.load)")
        return self.model


def _verdict(result: Regression) -> Convergence:
    """How far SGD's weights are from the exact optimum, in standard errors, and whether that is converged."""
    optimum = result.optimum
    fitted = [*optimum.fitted, True]
    errors = optimum.std_errors or [None] * len(fitted)
    distances = [
        abs(value - estimate) / error if f and error is not None and error > 0 else None
        for value, estimate, error, f in zip(result.learned, optimum.estimates, errors, fitted, strict=True)
    ]
    measured = [(d, name) for d, name in zip(distances, result.index, strict=True) if d is not None]
    worst, where = max(measured, default=(None, None))
    gap = result.loss_gap
    far = worst is not None and worst > CONVERGED_SE
    high = gap is not None and gap > CONVERGED_GAP
    warning = None
    if far or high:
        parts = [f"{worst:.2g} standard errors from the exact optimum on {where!r}" if far else "",
                 f"{gap:+.2%} above the optimum's loss" if high else ""]  # fmt: skip
        warning = (
            f"SGD has not converged: {' and '.join(p for p in parts if p)} (the table's estimates are the "
            f"optimum's); try {_remedies(result.plan or {})}"
        )
    converged = None if worst is None and gap is None else not (far or high)
    return Convergence(distances, worst, converged, warning)


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


def _t_quantile(alpha: float, df: int) -> float:
    """Student's t quantile a two-sided (1 - alpha) interval reaches, as the analysis's intervals use."""
    from scipy import stats  # ~0.3 s to import: only when an interval is asked for

    return float(stats.t.ppf(1 - alpha / 2, df))


def _shift(value: float, error: float | None, quantile: float | None) -> float | None:
    return None if error is None or quantile is None else value + quantile * error


def _nan(values: list | None) -> list[float]:
    return [math.nan if v is None else v for v in values] if values is not None else []


def _end(bounds: list | None, side: int, method: str | None) -> float | None:
    """One end of a saved interval: None for a column left out. An inverted test's null end is unbounded, which
    JSON cannot write; any other null end is a number that did not exist (NaN)."""
    if bounds is None:
        return None
    if bounds[side] is None:
        return (-math.inf, math.inf)[side] if _rank_tested(method) or _wild_bootstrapped(method) else math.nan
    return bounds[side]


def _rank_tested(interval: str | None) -> bool:
    # The words every name of the rank test's intervals has (stats.rank_test.RANK_TEST_NAME): this module stays
    # free of torch, which that one imports.
    return interval is not None and "rank-score test" in interval


def _wild_bootstrapped(interval: str | None) -> bool:
    # The words of stats.wild_bootstrap.WILD_BOOTSTRAP_NAME, as _rank_tested's.
    return interval is not None and "wild restricted bootstrap test" in interval


def _json_safe(value):
    """NaN and infinity are not JSON: they become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
