"""The end-of-fit report: summary.json, the printed table, the convergence verdict, degenerate tables, report.png."""

import json
import math

import numpy as np
import pytest

from lit_linreg.regression import Convergence, Optimum, Regression
from lit_linreg.report import format_table, shown_path, significant
from tests.conftest import CONFIGS, fit, log_dir, read_summary

CSV = ["--config", str(CONFIGS / "csv.yaml")]


def write(path, header: list[str], rows) -> str:
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n")
    return str(path)


def test_summary_keeps_its_keys_and_adds_the_inference(tutorial_run):
    cli, summary = tutorial_run
    kept = {"feature_names", "learned", "true", "loss", "loss_scale", "train_loss", "optimum", "optimum_note",
            "loss_gap", "intervals", "epochs", "global_step", "fit_seconds"}  # fmt: skip
    added = {"std_errors", "p_values", "r2", "n_rows", "condition_number", "warnings", "convergence", "per_sd"}
    assert kept | added <= set(summary)
    assert summary["n_rows"] == 500 and summary["df_resid"] == 495
    # The tutorial's median regression on 500 rows: R's default intervals there, the rank-score test's, whose
    # p-values say the same (below 0.05 exactly when 0 is outside), beside the sandwich's standard errors.
    assert summary["intervals"]["method"].startswith("inversion of the rank-score test")
    assert "sandwich" in summary["intervals"]["covariance"]
    for (low, high), w, p in zip(
        summary["intervals"]["w"], summary["optimum"]["w"], summary["p_values"]["w"], strict=True
    ):
        assert low < w < high and (p < 0.05) == (not low <= 0 <= high)
    text = (log_dir(cli) / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text


def test_table_prints_significant_digits_not_fixed_decimals():
    assert significant(-1.7e-5) == "-1.7e-5" and significant(8.09949) == "8.0995" and significant(2.0) == "2"
    optimum = Optimum(
        estimates=[-1.7e-5, 3.0], fitted=[True], loss=0.5, method="least squares (QR)", per_sd=[-0.5],
        fit_measure=0.9, fit_measure_name="R²", nobs=30, df_resid=28, condition_number=1.0,
        std_errors=[2e-6, 0.1], t_values=[-8.5, 30.0], p_values=[1e-12, 0.5],
        lower=[-2.1e-5, 2.8], upper=[-1.3e-5, 3.2],
    )  # fmt: skip
    result = Regression(
        feature_names=["tiny"], target="y", loss="mse", loss_scale="original", alpha=0.05, learned=[-1.69e-5, 3.01],
        train_loss=0.5, column_std=[1.0], n_train=30, optimum=optimum,
        convergence=Convergence([0.05, 0.1], 0.1, True, None),
    )  # fmt: skip
    title, header, row, _ = format_table(result).splitlines()[:4]
    assert title == "Least squares (QR): y on 1 column and a bias, 30 rows"
    assert header.split()[5:7] == ["[0.025", "0.975]"]
    row = row.split()
    assert row == ["tiny", "-1.7e-5", "2e-6", "1e-12", "-2.1e-5", "-1.3e-5", "-0.5", "-1.69e-5", "0.05"]


def test_an_unbounded_interval_runs_off_the_figure_and_the_table_says_inf():
    """A rank-test interval can be unbounded (16 rows, say): the table prints inf (and heads the p-values as the
    rank test's), the figure's bar runs past the edge of an axis scaled to the finite ends, and the legend says
    what that means."""
    from lit_linreg.figure import report_figure
    from lit_linreg.stats.rank_test import RANK_TEST_NAME

    optimum = Optimum(
        estimates=[0.5, 2.0, 1.0], fitted=[True, True], loss=0.5, method="least absolute deviations", per_sd=[0.5, 2.0],
        fit_measure=0.4, fit_measure_name="R1", nobs=16, df_resid=13, condition_number=1.0,
        std_errors=[0.3, 0.4, 0.2], t_values=[1.7, 5.0, 5.0], p_values=[0.08, 1e-4, 1e-4],
        lower=[-math.inf, 1.2, 0.6], upper=[math.inf, 2.9, 1.5], interval=RANK_TEST_NAME,
    )  # fmt: skip
    result = Regression(
        feature_names=["a", "b"], target="y", loss="mae", loss_scale="original", alpha=0.05, learned=[0.5, 2.0, 1.0],
        train_loss=0.5, column_std=[1.0, 1.0], n_train=16, optimum=optimum,
    )  # fmt: skip
    assert format_table(result).splitlines()[2].split()[4:6] == ["-inf", "inf"]
    assert format_table(result).splitlines()[1].split()[4] == "P(rank)"  # the test's p-values, not t's
    effects = report_figure(result, [1.0, 0.6]).axes[0]
    low, high = effects.get_xlim()
    assert -1 < low < 0.5 and 2.9 < high < 4  # the finite ends and the estimates, padded
    assert "unbounded" in effects.get_legend().get_texts()[-1].get_text()


@pytest.mark.slow
def test_a_converged_run_has_no_warning_and_a_stopped_one_warns(tmp_path, capsys):
    converged = read_summary(fit(tmp_path / "a", *CSV, "--model.loss", "mae"))  # diabetes by its hardest loss
    assert converged["convergence"]["converged"] and converged["convergence"]["max_distance_se"] < 0.5
    assert not any("has not converged" in w for w in converged["warnings"])
    stopped = read_summary(fit(tmp_path / "b", *CSV, "--trainer.max_steps", "20"))
    assert stopped["convergence"]["converged"] is False
    (warning,) = [w for w in stopped["warnings"] if "has not converged" in w]
    assert "standard errors from the exact optimum" in warning and "try" in warning
    assert f"warning: {warning}" in capsys.readouterr().out
    # It advises only what the run did not do: it already had the table defaults and a decaying lr.
    assert warning.endswith("try more epochs (--trainer.max_epochs)") and "configs/csv.yaml" not in warning


def degenerate(tmp_path, name, header, rows, *args):
    path = write(tmp_path / f"{name}.csv", header, rows)
    short = ["--trainer.max_epochs", "8"]  # the notes are about the table, not about how far SGD got
    return read_summary(fit(tmp_path / name, *CSV, *short, "--data.path", path, "--data.target", header[-1], *args))


@pytest.mark.slow
def test_degenerate_tables_finish_with_one_line_notes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    constant_target = degenerate(tmp_path, "constant_target", ["a", "b", "y"], np.c_[x, np.full(60, 4.0)])
    assert any("the target is constant" in n for n in constant_target["notes"])
    assert constant_target["std_errors"] is None and constant_target["loss_gap"] is None
    constant_column = degenerate(tmp_path, "constant_column", ["a", "k", "y"], np.c_[x[:, 0], np.ones(60), x @ [1, 2]])
    assert any("'k' is constant" in w for w in constant_column["warnings"])
    assert constant_column["optimum"]["fitted"] == [True, False] and constant_column["learned"]["w"][1] == 0
    duplicated = np.c_[x[:, 0], x[:, 0] * 1000, x[:, 1], x @ [1, 2] + rng.normal(size=60)]
    dup = degenerate(tmp_path, "duplicated", ["ads", "ads_k", "c", "y"], duplicated)
    assert any("rank-deficient" in w and "'ads_k'" in w for w in dup["warnings"])
    few = degenerate(tmp_path, "few_rows", ["a", "b", "c", "y"], rng.normal(size=(3, 4)))
    assert any("no residual degrees of freedom" in n for n in few["notes"]) and few["std_errors"] is None
    exact = degenerate(tmp_path, "exact", ["a", "b", "y"], np.c_[x, x @ [1.5, -2.0] + 3], "--model.loss", "mse")
    assert any("fits every row exactly" in n for n in exact["notes"])
    assert exact["loss_gap"] is None and exact["loss_gap_absolute"] >= 0  # no ratio to a zero loss
    out = capsys.readouterr().out
    assert "Traceback" not in out
    for summary in (constant_target, constant_column, dup, few, exact):
        json.dumps(summary, allow_nan=False)  # valid JSON: no NaN or Infinity


def test_report_png_shows_thirty_columns(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 30)) * rng.uniform(0.01, 100, 30)
    path = write(tmp_path / "wide.csv", [f"column_{i}" for i in range(30)] + ["y"], np.c_[x, x @ rng.normal(size=30)])
    cli = fit(tmp_path, *CSV, "--data.path", path, "--data.target", "y", "--trainer.max_epochs", "8", plot=True)
    png = log_dir(cli) / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert height >= 30 * 0.3 * 110  # at least ~0.3 inch a column: 30 labels stay apart
    assert not math.isnan(read_summary(cli)["condition_number"])


def test_paths_are_printed_as_typed_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "lightning_logs" / "version_0") == "lightning_logs/version_0"
    assert shown_path("lightning_logs") == "lightning_logs"
    assert shown_path(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")  # outside: absolute
