"""lit_linreg from Python: fit() is train.py fit, one Regression, predict, save/load, and the scikit-learn estimator."""

import inspect
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
import yaml
from scipy import optimize

import lit_linreg
from lit_linreg.api import TABLE_DEFAULTS
from lit_linreg.stats.wild_bootstrap import webb_weights, wild_bootstrap_draws
from tests.conftest import CONFIGS, DIABETES, LINNERUD, ROOT, evaluate, fit, last_checkpoint, read_summary
from tests.oracles import assert_inverts_wild_restricted_test

# What differs between two runs of the same fit: how long they took.
TIMINGS = {"fit_seconds", "analysis_seconds"}
# Differences of two numbers that agree to 1e-12: SGD's distance from the optimum (in standard errors, |w|/se of
# up to ~1e3 here) and its loss above the optimum's. Compared in absolute terms.
DIFFERENCES = {"distance_se", "max_distance_se", "loss_gap", "loss_gap_absolute"}
# Ratios of sums with some cancellation (Bell and McCaffrey's degrees of freedom): compared to 1e-10, relative.
RATIOS = {"df_params"}


def same(a, b, path="summary", absolute=False):
    """Two summaries agree: equal structure and text, every number within 1e-12 of the other (relative).

    Equal inputs give equal numbers only up to the last bits: BLAS's kernels round differently with the memory
    alignment of the arrays (here the exact optimum of two fits of the same file differed by 3e-15 relative).
    """
    if isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for key in set(a) - TIMINGS:
            if key == "cov_params" and a[key] is not None:
                # A covariance is as exact as the product of the two standard errors: an off-diagonal element
                # near 0 is a difference of larger terms (one here agreed to 2e-11 of itself, 4e-14 of that).
                scale = np.sqrt(np.outer(np.diag(a[key]), np.diag(a[key])))
                assert np.all(np.abs(np.subtract(a[key], b[key])) <= 1e-12 * scale), (path, a[key], b[key])
                continue
            if key in RATIOS and a[key] is not None:
                for part in ("w", "b"):
                    ours, theirs = (np.array(v[key][part], dtype=float) for v in (a, b))
                    np.testing.assert_allclose(ours, theirs, rtol=1e-10, err_msg=f"{path}.{key}")
                continue
            same(a[key], b[key], f"{path}.{key}", absolute or key in DIFFERENCES)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]", absolute)
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=0 if absolute else 1e-12, abs_tol=1e-9 if absolute else 0), (path, a, b)
    else:
        assert a == b, (path, a, b)


def written_predictions(capsys) -> pd.DataFrame:
    line = capsys.readouterr().out.strip().splitlines()[-1]  # "N predictions of T written to PATH"
    return pd.read_csv(line.split(" written to ")[1].split(";")[0])


# ----------------------------------------------------------------------------------------------------------------
# fit() is train.py fit


def test_fit_equals_train_py_fit_on_the_shipped_diabetes_table(diabetes_run):
    """A DataFrame read by pandas gives what the CLI's pyarrow reading of the same file gives."""
    _, cli_summary = diabetes_run  # configs/csv.yaml, a fifth of the rows held out
    same(lit_linreg.fit(pd.read_csv(DIABETES), "progression", val_fraction=0.2).to_dict(), cli_summary)


def test_fit_equals_train_py_fit_on_the_shipped_linnerud_table(tmp_path):
    """A file's path, as the CLI reads it, at a 90% level. Two epochs: the same numbers need not be converged."""
    args = ["--config", str(CONFIGS / "csv.yaml"), "--data.path", str(LINNERUD), "--data.target", "chins"]
    cli_summary = read_summary(fit(tmp_path, *args, "--trainer.max_epochs", "2", "--report.alpha", "0.1"))
    assert cli_summary["alpha"] == 0.1
    same(lit_linreg.fit(str(LINNERUD), "chins", max_epochs=2, alpha=0.1).to_dict(), cli_summary)


def test_fit_defaults_are_the_table_defaults_of_configs_csv_yaml():
    config = yaml.safe_load((CONFIGS / "csv.yaml").read_text())
    given = {**config["model"], **config["data"], **config["trainer"]}
    defaults = {name: p.default for name, p in inspect.signature(lit_linreg.fit).parameters.items()}
    for name, value in TABLE_DEFAULTS.items():
        assert defaults[name] == given[name] == value, name
    assert defaults["loss"] == "mse" and given["loss"] is None  # null: least squares for a table, in the CLI too


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    """A table with a text column and missing cells, as a CSV file and as the DataFrame a user would hold."""
    rng = np.random.default_rng(3)
    n = 80
    x = rng.normal(size=n).round(4)
    region = rng.choice(["north", "south", "west"], n)
    y = (2 * x + (region == "south") * 1.5 - (region == "west") + rng.normal(0, 0.3, n)).round(4)
    frame = pd.DataFrame({"x": x, "region": pd.Categorical(region), "y": y})
    frame.loc[3, "x"] = np.nan
    frame.loc[5, "region"] = np.nan
    frame.loc[40, "y"] = np.nan
    path = tmp_path_factory.mktemp("regions") / "regions.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_a_dataframe_with_a_category_and_missing_cells_equals_its_csv(regions, tmp_path, monkeypatch, capfd):
    frame, path = regions
    monkeypatch.chdir(tmp_path)
    from_csv = lit_linreg.fit(str(path), "y", missing="drop", max_epochs=2)
    from_frame = lit_linreg.fit(frame, "y", missing="drop", max_epochs=2)
    expected = from_csv.to_dict()
    expected["notes"] = [note.replace(str(path), "the DataFrame") for note in expected["notes"]]  # where rows came from
    same(from_frame.to_dict(), expected)
    assert from_frame.nobs == 77 and list(from_frame.params.index) == ["x", "region=south", "region=west", "bias"]
    assert any("dropped 3 of 80 rows" in note for note in from_frame.notes)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # quiet: no banner, no bar, no warning
    assert list(tmp_path.iterdir()) == []  # and nothing written


def test_bad_settings_and_input_are_one_line_value_errors(regions, tmp_path, monkeypatch):
    frame, _ = regions
    monkeypatch.chdir(tmp_path)
    cases = [
        (dict(target="nope"), "'nope' is not a column of the DataFrame"),
        (dict(target="y", lr=0), "lr must be > 0, got 0"),
        (dict(target="y", loss="l1"), "loss must be mae, mse, huber or quantile"),
        (dict(target="y", alpha=1.5), "alpha must be in (0, 1)"),
        (dict(target="y"), "missing cell"),  # missing="error" is the default
        (dict(), "name the column of the DataFrame to predict with target="),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as error:
            lit_linreg.fit(frame, **kwargs)
        assert message in str(error.value) and "\n" not in str(error.value) and "--" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_root_dir_writes_the_run_as_the_cli_does(regions, tmp_path):
    frame, _ = regions
    result = lit_linreg.fit(frame, "y", missing="drop", max_epochs=2, root_dir=tmp_path)
    run = tmp_path / "lightning_logs" / "version_0"
    assert {"summary.json", "report.png", "checkpoints", "hparams.yaml"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "summary.json").read_text()) == result.to_dict()
    same(lit_linreg.load(run / "checkpoints" / "last.ckpt").to_dict(), result.to_dict())


def test_arrays_with_nan_are_missing_cells_as_in_a_dataframe(regions):
    frame, _ = regions
    numeric = frame.assign(south=(frame["region"] == "south").astype(float)).drop(columns="region")
    numeric.loc[5, "south"] = np.nan
    x, y = numeric.drop(columns="y"), numeric["y"]
    from_frame = lit_linreg.fit(numeric, "y", missing="drop", max_epochs=1)
    from_arrays = lit_linreg.fit((x.to_numpy(), y.to_numpy()), missing="drop", max_epochs=1)
    np.testing.assert_allclose(from_arrays.params.to_numpy(), from_frame.params.to_numpy(), rtol=1e-12)  # as same()
    assert list(from_arrays.params.index) == ["x1", "x2", "bias"] and from_arrays.nobs == 77
    assert from_arrays.predict(x.to_numpy()[:6]).isna().tolist() == [False] * 3 + [True, False, True]


def test_ctrl_c_in_a_notebook_returns_the_weights_so_far_and_leaves_ctrl_c_working(regions):
    import signal

    import lightning as L

    class CtrlC(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                signal.raise_signal(signal.SIGINT)

    frame, _ = regions
    handler = signal.getsignal(signal.SIGINT)
    result = lit_linreg.fit(frame, "y", missing="drop", max_epochs=5, callbacks=[CtrlC()])
    assert result.interrupted and result.warnings[0].startswith(f"interrupted at step {result.global_step}:")
    assert result.global_step < 5 * result.plan["steps_per_epoch"]  # stopped early, after the current step
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_refused_run_leaves_no_run_directory_and_the_callers_random_state_alone(regions, tmp_path):
    frame, _ = regions
    with pytest.raises(ValueError) as refused:  # refused by Lightning's Trainer, after the directory was claimed
        lit_linreg.fit(frame, "y", missing="drop", root_dir=tmp_path, **_refused_on_this_machine())
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "lightning_logs").exists() or not list((tmp_path / "lightning_logs").iterdir())
    np.random.seed(7)
    torch.manual_seed(7)
    expected = np.random.rand(), torch.rand(1).item()
    np.random.seed(7)
    torch.manual_seed(7)
    lit_linreg.fit(frame, "y", missing="drop", max_epochs=1, seed=42)
    assert (np.random.rand(), torch.rand(1).item()) == expected


def _refused_on_this_machine() -> dict:
    return {"accelerator": "gpu"} if not torch.cuda.is_available() else {"accelerator": "cpu", "max_epochs": -5}


def test_a_left_out_column_has_no_estimate_and_the_others_are_least_squares(regions):
    frame, _ = regions
    rows = frame.dropna().assign(constant=3.0)
    result = lit_linreg.fit(rows, "y", max_epochs=1)
    assert np.isnan(result.params["constant"]) and result.conf_int().loc["constant"].isna().all()
    assert any("constant" in warning for warning in result.warnings)
    design = sm.add_constant(pd.get_dummies(rows[["x", "region"]], drop_first=True, dtype=float), prepend=False)
    ols = sm.OLS(rows["y"], design).fit()
    np.testing.assert_allclose(result.params.drop("constant").to_numpy(), ols.params.to_numpy(), rtol=1e-10)


# ----------------------------------------------------------------------------------------------------------------
# One result


def test_the_result_has_statsmodels_names_and_numbers(regions):
    """Least squares with HC2, as statsmodels' OLS(...).fit(cov_type="HC2"); its intervals and p-values invert the
    wild restricted bootstrap test of each t (restated in numpy), at the fit's level."""
    frame, _ = regions
    result = lit_linreg.fit(frame, "y", missing="drop", max_epochs=2)
    rows = frame.dropna()
    design = sm.add_constant(pd.get_dummies(rows[["x", "region"]], drop_first=True, dtype=float), prepend=False)
    ols = sm.OLS(rows["y"], design).fit(cov_type="HC2")
    np.testing.assert_allclose(result.params.to_numpy(), ols.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.bse.to_numpy(), ols.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(result.tvalues.to_numpy(), ols.tvalues.to_numpy(), rtol=1e-8)
    at_90 = lit_linreg.fit(frame, "y", missing="drop", max_epochs=2, alpha=0.1)
    for regression, alpha in ((result, 0.05), (at_90, 0.1)):
        bounds = regression.conf_int()
        v = webb_weights(len(rows), wild_bootstrap_draws(alpha), seed=42).numpy()  # the fit's seed
        assert_inverts_wild_restricted_test(
            design.to_numpy(),
            rows["y"].to_numpy(),
            bounds["lower"],
            bounds["upper"],
            regression.pvalues,
            regression.bse,
            alpha,
            v,
        )
    with pytest.raises(ValueError, match="refit with report alpha 0.1"):
        result.conf_int(0.1)  # the test's draws are at the fit's level
    assert result.rsquared == pytest.approx(ols.rsquared, rel=1e-10) and result.df_resid == ols.df_resid == 73
    assert result.nobs == 77 and result.rsquared_name == "R²"
    text = str(at_90.summary())
    assert text.splitlines()[0] == "Least squares (QR): y on 3 columns and a bias, 77 rows"
    assert "[0.05" in text and "0.95]" in text and "90% intervals" in text and " P(wild) " in text
    page = result._repr_html_()
    assert page.startswith("<table>") and all(f"<th>{n}</th>" in page for n in result.params.index)


@pytest.mark.parametrize(("covariance", "cov_type"), [("classical", "nonrobust"), ("robust", "HC2")])
def test_prediction_and_confidence_intervals_are_statsmodels_get_prediction(regions, covariance, cov_type):
    frame, _ = regions
    rows = frame.dropna()
    result = lit_linreg.fit(rows, "y", max_epochs=1, covariance=covariance)
    design = sm.add_constant(pd.get_dummies(rows[["x", "region"]], drop_first=True, dtype=float), prepend=False)
    ols = sm.OLS(rows["y"], design).fit(cov_type=cov_type, use_t=True)  # Student's t on n - p (HC2's default: z)
    np.testing.assert_allclose(result.cov_params().to_numpy(), ols.cov_params().to_numpy(), rtol=1e-8)
    new = rows.drop(columns="y").iloc[:12]
    theirs = ols.get_prediction(design.iloc[:12]).summary_frame(alpha=0.1)
    for kind, prefix in (("confidence", "mean_ci"), ("prediction", "obs_ci")):
        ours = result.predict(new, interval=kind, alpha=0.1)
        np.testing.assert_allclose(ours["y_estimate"], theirs["mean"], rtol=1e-10)
        np.testing.assert_allclose(ours["y_lower"], theirs[f"{prefix}_lower"], rtol=1e-8)
        np.testing.assert_allclose(ours["y_upper"], theirs[f"{prefix}_upper"], rtol=1e-8)
        pd.testing.assert_series_equal(ours["y_prediction"], result.predict(new))  # SGD's, as without interval
    median = lit_linreg.fit(rows, "y", max_epochs=1, loss="mae")
    assert median.predict(new, interval="confidence").shape == (12, 4)
    with pytest.raises(ValueError, match="needs least squares"):
        median.predict(new, interval="prediction")


def test_a_quantile_fit_is_quantreg_at_that_quantile_and_names_it(regions):
    frame, _ = regions
    rows = frame.dropna()
    result = lit_linreg.fit(rows, "y", loss="quantile", quantile=0.9, max_epochs=1)
    design = sm.add_constant(pd.get_dummies(rows[["x", "region"]], drop_first=True, dtype=float), prepend=False)
    theirs = sm.QuantReg(rows["y"], design).fit(q=0.9, p_tol=1e-12, max_iter=5_000)
    np.testing.assert_allclose(result.params.to_numpy(), theirs.params.to_numpy(), rtol=2e-6)  # IRLS's stop
    text = str(result.summary())
    assert text.startswith("Quantile regression, τ = 0.9 ") and "mean pinball loss (τ = 0.9)" in text
    assert result.to_dict()["quantile"] == 0.9 and lit_linreg.Regression.from_dict(result.to_dict()).quantile == 0.9
    fitted = result.predict(rows.iloc[:5], interval="confidence")  # the interval of the fitted 90th percentile
    assert (fitted["y_lower"] < fitted["y_estimate"]).all() and (fitted["y_estimate"] < fitted["y_upper"]).all()


@pytest.fixture(scope="module")
def schools(tmp_path_factory):
    """Pupils in 15 schools, a school effect in the noise and in the column: what cluster-robust errors are for."""
    rng = np.random.default_rng(5)
    school = rng.integers(0, 15, 120)
    x = rng.normal(size=120) + 0.5 * rng.normal(size=15)[school]
    region = rng.choice(["a", "b", "c"], 120)
    y = 1 + 2 * x + (region == "b") + rng.normal(size=15)[school] + rng.normal(size=120)
    frame = pd.DataFrame({"x": x, "region": region, "school": [f"s{k}" for k in school], "y": y})
    path = tmp_path_factory.mktemp("schools") / "schools.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_cluster_robust_errors_are_statsmodels_cr1_with_clusters_minus_one_degrees_of_freedom(schools, tmp_path):
    frame, path = schools
    result = lit_linreg.fit(frame, "y", cluster="school", max_epochs=1)  # not a feature: every other column is
    design = sm.add_constant(pd.get_dummies(frame[["x", "region"]], drop_first=True, dtype=float), prepend=False)
    groups = frame["school"].astype("category").cat.codes
    ols = sm.OLS(frame["y"], design).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    assert list(result.params.index) == ["x", "region=b", "region=c", "bias"]
    np.testing.assert_allclose(result.params.to_numpy(), ols.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.bse.to_numpy(), ols.bse.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(result.pvalues.to_numpy(), ols.pvalues.to_numpy(), rtol=1e-8)
    for alpha in (0.05, 0.1):
        np.testing.assert_allclose(result.conf_int(alpha).to_numpy(), ols.conf_int(alpha).to_numpy(), rtol=1e-8)
    assert "cluster-robust sandwich (CR1, 15 clusters)" in str(result.summary())
    assert "Student's t, 14 degrees of freedom" in str(result.summary())
    # A category no row has is not a cluster (G counts the clusters the training rows are in).
    unused = frame.assign(school=pd.Categorical(frame["school"], categories=[*sorted(set(frame["school"])), "none"]))
    same = lit_linreg.fit(unused, "y", cluster="school", max_epochs=1)
    np.testing.assert_allclose(same.bse.to_numpy(), result.bse.to_numpy(), rtol=1e-12)
    # The CLI reads the column with the table (--report.cluster is linked to the data): the same numbers.
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--data.path", str(path), "--data.target", "y",
              "--report.cluster", "school", "--trainer.max_epochs", "1")  # fmt: skip
    summary = read_summary(cli)
    np.testing.assert_allclose(summary["std_errors"]["w"], result.bse.to_numpy()[:-1], rtol=1e-12)
    assert summary["df_inference"] == 14


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(loss="mae"), "cluster-robust standard errors are least squares' here"),
        (dict(covariance="classical"), "is a robust covariance"),
        (dict(bootstrap=200), "would ignore the clusters"),
        (dict(cluster="nope"), "'nope' is not a column of"),
        (dict(cluster="y"), "is the target or a feature"),
        (dict(weights="school"), "name the same column 'school'"),
        (dict(optimum=False), "for the exact optimum's errors: optimum is false"),
    ],
)
def test_clusters_are_refused_in_one_line_where_they_are_not_defined(schools, settings, message):
    frame, _ = schools
    with pytest.raises(ValueError) as refused:
        lit_linreg.fit(frame, "y", **{"cluster": "school", "max_epochs": 1, **settings})
    assert message in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    """Rows of known unequal precision: the noise's variance is 1/w, heavy-tailed."""
    rng = np.random.default_rng(7)
    n = 150
    x, z, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(0.2, 3, n)
    region = rng.choice(["a", "b", "c"], n)
    y = 1 + 2 * x - z + (region == "b") + rng.standard_t(3, n) / np.sqrt(w)
    frame = pd.DataFrame({"x": x, "z": z, "region": region, "w": w, "y": y})
    path = tmp_path_factory.mktemp("weighted") / "weighted.csv"
    frame.to_csv(path, index=False)
    design = sm.add_constant(pd.get_dummies(frame[["x", "z", "region"]], drop_first=True, dtype=float), prepend=False)
    return frame, path, design


@pytest.mark.parametrize(("covariance", "cov_type"), [("robust", "HC2"), ("classical", "nonrobust")])
def test_case_weights_are_statsmodels_wls_and_sgd_converges_to_it(weighted, covariance, cov_type):
    frame, _, design = weighted
    # w is not a feature; SGD's run is the planned one where it is judged (robust), one epoch otherwise.
    result = lit_linreg.fit(
        frame, "y", weights="w", covariance=covariance, max_epochs=None if covariance == "robust" else 1
    )
    wls = sm.WLS(frame["y"], design, weights=frame["w"]).fit(cov_type=cov_type, use_t=True)
    assert list(result.params.index) == ["x", "z", "region=b", "region=c", "bias"]
    np.testing.assert_allclose(result.params.to_numpy(), wls.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(result.bse.to_numpy(), wls.bse.to_numpy(), rtol=1e-8)
    if covariance == "robust":  # the wild restricted bootstrap test on the weighted (whitened) rows
        root = np.sqrt(frame["w"].to_numpy())
        bounds, v = result.conf_int(), webb_weights(len(frame), 999, seed=42).numpy()
        whitened = (design.to_numpy() * root[:, None], frame["y"].to_numpy() * root)
        assert_inverts_wild_restricted_test(
            *whitened, bounds["lower"], bounds["upper"], result.pvalues, result.bse, 0.05, v
        )
    else:
        np.testing.assert_allclose(result.conf_int().to_numpy(), wls.conf_int().to_numpy(), rtol=1e-8)
    assert result.rsquared == pytest.approx(wls.rsquared, rel=1e-10)
    new = frame.drop(columns=["y", "w"]).iloc[:6]
    theirs = wls.get_prediction(design.iloc[:6]).summary_frame(alpha=0.05)  # a new observation of weight 1
    ours = result.predict(new, interval="prediction")
    np.testing.assert_allclose(ours[["y_lower", "y_upper"]], theirs[["obs_ci_lower", "obs_ci_upper"]], rtol=1e-8)
    # SGD minimises the same weighted loss: it ends at the weighted optimum, not the unweighted one.
    assert str(result.summary()).startswith("Weighted least squares (QR)")
    assert result.converged or covariance == "classical"


def test_case_weights_weight_quantile_and_huber_fits_as_r_does(weighted, tmp_path):
    frame, path, design = weighted
    n, p = design.shape
    w, y = frame["w"].to_numpy(), frame["y"].to_numpy()
    for tau in (0.5, 0.8):  # Σ w ρ_τ(u): R's rq(weights=); the LP solved by HiGHS
        result = lit_linreg.fit(frame, "y", weights="w", loss="quantile", quantile=tau, max_epochs=1)
        cost = np.r_[np.zeros(p), tau * w, (1 - tau) * w]
        constraints = np.c_[design.to_numpy(), np.eye(n), -np.eye(n)]
        exact = optimize.linprog(cost, A_eq=constraints, b_eq=y, bounds=[(None, None)] * p + [(0, None)] * 2 * n)
        np.testing.assert_allclose(result.params.to_numpy(), exact.x[:p], rtol=1e-9)
    # Huber's with w as inverse variances (R's rlm(weights=), wt.method="inv.var"): RLM on rows scaled by √w.
    result = lit_linreg.fit(frame, "y", weights="w", loss="huber", covariance="classical", max_epochs=1)
    root = np.sqrt(w)
    rlm = sm.RLM(y * root, design.to_numpy() * root[:, None], M=sm.robust.norms.HuberT()).fit(tol=1e-13, maxiter=1000)
    np.testing.assert_allclose(result.params.to_numpy(), rlm.params, rtol=1e-8)
    np.testing.assert_allclose(result.bse.to_numpy(), rlm.bse, rtol=1e-8)
    # The CLI's --data.weights reads the same column from the file.
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--data.path", str(path), "--data.target", "y",
              "--data.weights", "w", "--model.loss", "huber", "--report.covariance", "classical",
              "--trainer.max_epochs", "1")  # fmt: skip
    # (1e-9: the CSV's decimal digits move the fixed point of Huber's scale iterations by ~1e-11.)
    np.testing.assert_allclose(read_summary(cli)["std_errors"]["w"], result.bse.to_numpy()[:-1], rtol=1e-9)
    # test measures other rows, unweighted: they need no weights column.
    other = tmp_path / "other.csv"
    frame.drop(columns="w").to_csv(other, index=False)
    evaluate(tmp_path, "test", "--ckpt_path", str(last_checkpoint(cli)), "--data.path", str(other))


def test_bad_weights_are_refused_in_one_line(weighted, tmp_path):
    frame, _, _ = weighted
    cases = [
        (frame.assign(w=frame["w"].where(frame.index != 4, -1.0)), {}, "line 6, weights column 'w': -1 is not"),
        (frame.assign(w=frame["w"].where(frame.index != 4, np.nan)), {}, "missing cells ('w' 1"),
        (frame, {"weights": "y"}, "is the target or a feature"),
    ]
    for table, settings, message in cases:
        with pytest.raises(ValueError) as refused:
            lit_linreg.fit(table, "y", **{"weights": "w", "max_epochs": 1, **settings})
        assert message in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
    dropped = lit_linreg.fit(cases[1][0], "y", weights="w", missing="drop", max_epochs=1)
    assert dropped.nobs == 149


@pytest.mark.parametrize(
    ("settings", "method"), [({"bootstrap": 100}, "percentile bootstrap"), ({"loss": "mae"}, "rank-score test")]
)
def test_intervals_not_from_a_standard_error_refuse_another_level_rather_than_invent_it(regions, settings, method):
    """A bootstrap's draws are not kept, nor the rank-score test's rows: another level needs a refit."""
    frame, _ = regions
    result = lit_linreg.fit(frame, "y", missing="drop", max_epochs=1, **settings)
    assert result.conf_int().shape == (4, 2)
    with pytest.raises(ValueError, match=method):
        result.conf_int(0.1)


def test_huber_on_a_small_wide_table_inverts_the_refitted_bootstrap_test_and_refuses_another_level(capfd):
    """20 rows for 6 parameters (linnerud): Huber's robust intervals and p-values are, by default, those of the wild
    restricted bootstrap test with every draw refitted, analyse's with ``refitted_bootstrap`` (its ends restated
    with numpy in tests/test_stats.py), named so; its p-values are its counts over 200; its draws are not kept,
    so another level asks for a refit, where Bell and McCaffrey's t would be shifted to it."""
    from lit_linreg.stats.analysis import analyse

    result = lit_linreg.fit(str(LINNERUD), "chins", loss="huber", max_epochs=1)
    assert capfd.readouterr() == ("", "")  # quiet: the line train.py prints before the draws is not printed here
    frame = pd.read_csv(LINNERUD)
    columns = [c for c in frame.columns if c != "chins"]
    x, y = torch.tensor(frame[columns].to_numpy(float)), torch.tensor(frame["chins"].to_numpy(float))
    # The draws' weights come from the run's seed (lit_linreg.fit's default, 42).
    refitted, student = (analyse(x, y, columns, "huber", seed=42, refitted_bootstrap=r) for r in (True, False))
    assert "each draw refitted by Huber's M-estimate (Davidson and Flachaire 2008" in str(result.summary())
    assert refitted.interval.startswith("inversion of the wild restricted bootstrap test of the sandwich's t")
    assert student.interval.startswith("Student's t, Bell-McCaffrey degrees of freedom")
    coefficients = [*refitted.weights, refitted.bias]
    # The same fit through the API and through analyse: the ends are brackets' middles, the same to rounding.
    ends = np.array([[c.low, c.high] for c in coefficients])
    np.testing.assert_allclose(result.conf_int().to_numpy(), ends, rtol=1e-9)
    assert not np.allclose(ends, [[c.low, c.high] for c in [*student.weights, student.bias]], rtol=1e-3)
    counts = result.pvalues.to_numpy() * 200
    np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.pvalues.to_numpy(), [c.p_value for c in coefficients])
    with pytest.raises(ValueError, match="refit with report alpha 0.1"):
        result.conf_int(0.1)


# ----------------------------------------------------------------------------------------------------------------
# predict, save, load


def test_predict_equals_train_py_predict(diabetes_run, tmp_path, capsys):
    cli, _ = diabetes_run
    checkpoint = cli.trainer.log_dir + "/checkpoints/last.ckpt"
    result = lit_linreg.load(checkpoint)
    args = ["--data.predict_path", str(DIABETES), "--predict.interval", "prediction", "--report.alpha", "0.1"]
    evaluate(tmp_path, "predict", "--ckpt_path", checkpoint, *args)
    file = written_predictions(capsys)
    written = file["progression_prediction"].to_numpy()
    ours = result.predict(str(DIABETES), interval="prediction", alpha=0.1)
    for column in ("progression_estimate", "progression_lower", "progression_upper"):
        np.testing.assert_allclose(file[column].to_numpy(), ours[column].to_numpy(), rtol=1e-14)
    # The same float64 products, summed by BLAS in an order that can follow the rows' memory layout (Lightning's
    # batches are views) and, from pandas' CSV parser, inputs that may differ by an ulp (its default is not
    # round-trip exact before pandas 2.2): 2.5e-16 measured at most; 1e-14 bounds it.
    np.testing.assert_allclose(result.predict(str(DIABETES)).to_numpy(), written, rtol=1e-14)
    frame = pd.read_csv(DIABETES)
    np.testing.assert_allclose(result.predict(frame).to_numpy(), written, rtol=1e-14)
    features = frame.drop(columns="progression")
    np.testing.assert_allclose(result.predict(features.to_numpy()).to_numpy(), written, rtol=1e-14)  # fit's order
    shuffled = features.sample(frac=1, random_state=0)
    assert result.predict(shuffled).index.equals(shuffled.index)  # the DataFrame's own index


def test_save_and_load_round_trip_and_the_cli_predicts_from_it(regions, tmp_path, capsys):
    frame, _ = regions
    result = lit_linreg.fit(frame, "y", missing="drop", max_epochs=2)
    path = result.save(tmp_path / "regions.ckpt")
    torch.load(path, weights_only=True)  # plain types only
    loaded = lit_linreg.load(path)
    assert loaded.to_dict() == result.to_dict()
    pd.testing.assert_series_equal(loaded.params, result.params)
    new = frame.drop(columns="y").dropna().iloc[:20]
    pd.testing.assert_series_equal(loaded.predict(new), result.predict(new))
    # The CLI reads it as it reads a run's last.ckpt.
    new.to_csv(tmp_path / "new.csv", index=False)
    evaluate(tmp_path, "predict", "--ckpt_path", str(path), "--data.predict_path", str(tmp_path / "new.csv"))
    written = written_predictions(capsys)["y_prediction"].to_numpy()
    np.testing.assert_allclose(written, result.predict(new), rtol=1e-14)  # the CSV round trip: as above
    with pytest.raises(ValueError, match="'east', which the model was not trained on"):
        result.predict(new.assign(region="east"))
    # missing="drop": a row with a missing input is predicted as NaN, not refused
    gaps = result.predict(frame.drop(columns="y").iloc[:8])
    assert gaps.isna().tolist() == [False, False, False, True, False, True, False, False]


# ----------------------------------------------------------------------------------------------------------------
# Fast to start


def test_import_lit_linreg_imports_no_heavy_library():
    code = "import sys, lit_linreg; print([m for m in ('torch', 'lightning', 'scipy', 'pandas', 'matplotlib', "
    code += "'pyarrow') if m in sys.modules]); print(lit_linreg.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    loaded, version = out.splitlines()
    assert loaded == "[]"
    assert f'version = "{version}"' in (ROOT / "pyproject.toml").read_text()  # the package's, not a copy
