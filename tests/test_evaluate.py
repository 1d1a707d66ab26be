"""validate, test and predict take the model and its data settings from the checkpoint, and say what they measured."""

import csv
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from lit_linreg.cli import cli_main
from lit_linreg.model import LinearRegression
from tests.conftest import CONFIGS, DIABETES, command_error, evaluate, last_checkpoint

FEATURES = ["age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu"]


def diabetes_rows() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(DIABETES, delimiter=",", skiprows=1)
    return table[:, :10], table[:, 10]


def written_predictions(capsys) -> Path:
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " written to " in line]
    return Path(line.split(" written to ")[1])


def predictions_in(path: Path, column: str = "progression_prediction") -> np.ndarray:
    with open(path) as file:
        return np.array([float(row[column]) for row in csv.DictReader(file)])


def expected(summary: dict, x: np.ndarray) -> np.ndarray:
    """The fitted run's own X·w + b, from its summary.json."""
    return x @ np.array(summary["learned"]["w"]) + summary["learned"]["b"]


def test_the_checkpoint_alone_predicts_what_the_run_learned(diabetes_run, tmp_path, capsys):
    cli, summary = diabetes_run
    checkpoint = last_checkpoint(cli)
    x, _ = diabetes_rows()
    model = LinearRegression.load_from_checkpoint(checkpoint)  # no config, no data: the model itself
    np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), expected(summary, x), rtol=1e-6)

    subset = tmp_path / "subset.csv"
    lines = DIABETES.read_text().splitlines()
    subset.write_text("\n".join([lines[0], *lines[100:131]]) + "\n")  # 31 rows, target column included
    new = tmp_path / "new.csv"
    rng = np.random.default_rng(0)
    fresh = x[rng.integers(0, len(x), 25)] * rng.uniform(0.9, 1.1, (25, 10))
    new.write_text(",".join(FEATURES) + "\n" + "\n".join(",".join(f"{v:.6g}" for v in row) for row in fresh) + "\n")
    for path, rows in ((subset, x[99:130]), (new, np.loadtxt(new, delimiter=",", skiprows=1))):
        # The same numbers whatever config the command line names (or none).
        for config in ([], ["--config", str(CONFIGS / "seed.yaml")], ["--config", str(CONFIGS / "csv.yaml")]):
            evaluate(tmp_path, "predict", "--ckpt_path", str(checkpoint), "--data.predict_path", str(path), *config)
            np.testing.assert_allclose(predictions_in(written_predictions(capsys)), expected(summary, rows), rtol=1e-6)


def test_predictions_keep_the_files_columns_and_format(diabetes_run, tmp_path, capsys):
    cli, summary = diabetes_run
    x, y = diabetes_rows()
    import pyarrow as pa

    table = pa.table({"patient": [f"p{i}" for i in range(20)], **{f: x[:20, j] for j, f in enumerate(FEATURES)}})
    pq.write_table(table, tmp_path / "new.parquet")
    evaluate(
        tmp_path,
        "predict",
        "--ckpt_path",
        str(last_checkpoint(cli)),
        "--data.predict_path",
        str(tmp_path / "new.parquet"),
    )
    out = pq.read_table(written_predictions(capsys))
    assert out.column_names == ["patient", *FEATURES, "progression_prediction"]
    np.testing.assert_allclose(out.column("progression_prediction").to_numpy(), expected(summary, x[:20]), rtol=1e-6)


def test_a_predict_file_without_a_feature_column_gets_one_line(diabetes_run, tmp_path):
    cli, _ = diabetes_run
    path = tmp_path / "partial.csv"
    path.write_text("age,sex,bmi\n50,1,30\n")
    message = command_error("predict", "--ckpt_path", str(last_checkpoint(cli)), "--data.predict_path", str(path))
    assert "lacks the feature column(s) 'bp', 'tc'" in message


def test_test_after_a_held_out_fit_scores_exactly_the_held_out_rows(diabetes_run, tmp_path, capsys):
    cli, _ = diabetes_run
    checkpoint = str(last_checkpoint(cli))
    metrics = evaluate(tmp_path, "test", "--ckpt_path", checkpoint).trainer.callback_metrics
    out = capsys.readouterr().out
    assert "test: the 88 held-out rows of" in out and "val_fraction 0.2" in out
    x, y = cli.datamodule.held_out_rows()
    prediction = cli.model(x).numpy()
    residual = prediction - y.numpy()
    assert int(metrics["test/rows"]) == 88 == len(y)
    assert float(metrics["test/mae"]) == pytest.approx(np.abs(residual).mean(), rel=1e-6)
    assert float(metrics["test/mse"]) == pytest.approx(np.square(residual).mean(), rel=1e-6)
    r2 = 1 - np.square(residual).sum() / np.square(y.numpy() - y.numpy().mean()).sum()
    assert float(metrics["test/r2"]) == pytest.approx(r2, rel=1e-5)
    assert 20 < float(metrics["test/mae"]) < 80  # disease-progression points, not standardized units


def test_validate_without_held_out_rows_says_they_are_the_training_rows(tutorial_run, tmp_path, capsys):
    cli, _ = tutorial_run
    metrics = evaluate(tmp_path, "validate", "--ckpt_path", str(last_checkpoint(cli))).trainer.callback_metrics
    assert "validate: all 500 rows of the planted data: no rows were held out, so these are the training rows" in (
        capsys.readouterr().out
    )
    assert int(metrics["val/rows"]) == 500 and float(metrics["val/r2"]) > 0.99


def test_test_on_another_file_measures_all_its_rows(diabetes_run, tmp_path, capsys):
    cli, summary = diabetes_run
    other = tmp_path / "other.csv"
    lines = DIABETES.read_text().splitlines()
    other.write_text("\n".join([lines[0], *lines[1:61]]) + "\n")
    metrics = evaluate(tmp_path, "test", "--ckpt_path", str(last_checkpoint(cli)), "--data.path", str(other))
    assert f"test: all 60 rows of {other}, a table other than the one trained on ({DIABETES})" in (
        capsys.readouterr().out
    )
    x, y = diabetes_rows()
    assert int(metrics.trainer.callback_metrics["test/rows"]) == 60
    mae = np.abs(expected(summary, x[:60]) - y[:60]).mean()
    assert float(metrics.trainer.callback_metrics["test/mae"]) == pytest.approx(mae, rel=1e-6)


def test_a_changed_table_is_refused(diabetes_run, tmp_path):
    cli, _ = diabetes_run
    checkpoint = torch.load(last_checkpoint(cli), weights_only=True)
    changed = tmp_path / "diabetes.csv"
    lines = DIABETES.read_text().splitlines()
    changed.write_text("\n".join(lines[:-5]) + "\n")
    checkpoint["datamodule_hyper_parameters"]["path"] = str(changed)
    checkpoint["LinRegDataModule"]["path"] = str(changed)
    moved = tmp_path / "moved.ckpt"
    torch.save(checkpoint, moved)
    message = command_error("test", "--ckpt_path", str(moved))
    assert "is not the table the checkpoint was trained on: it has 437 rows (checkpoint: 442)" in message


def test_predict_says_how_many_rows_it_left_empty_and_why(diabetes_run, tmp_path, capsys):
    cli, summary = diabetes_run
    lines = DIABETES.read_text().splitlines()
    cells = lines[2].split(",")
    cells[2] = ""  # one missing bmi
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join([lines[0], lines[1], ",".join(cells), lines[3]]) + "\n")
    args = ["--ckpt_path", str(last_checkpoint(cli)), "--data.predict_path", str(path), "--data.missing", "drop"]
    evaluate(tmp_path, "predict", *args)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " written to " in line]
    assert line.startswith("2 predictions of progression written to ")
    assert line.endswith("; 1 rows left empty for missing cells (--data.missing drop)")


def test_evaluating_writes_into_the_checkpoints_run_and_never_replaces_a_file(
    diabetes_run, tmp_path, capsys, monkeypatch
):
    cli, _ = diabetes_run
    run = last_checkpoint(cli).parent.parent
    before = sorted(p.name for p in run.iterdir())
    monkeypatch.chdir(tmp_path)
    quiet = ["--ckpt_path", str(last_checkpoint(cli)), "--trainer.enable_progress_bar", "false"]
    cli_main(["validate", *quiet])
    for _ in range(2):
        cli_main(["predict", *quiet, "--data.predict_path", str(DIABETES)])
    written = [line.split(" written to ")[1] for line in capsys.readouterr().out.splitlines() if " written to " in line]
    assert [Path(p).name for p in written] == ["predictions-diabetes.csv", "predictions-diabetes-2.csv"]
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, *(Path(p).name for p in written)])
    assert list(tmp_path.iterdir()) == []  # no lightning_logs/version_N where the commands ran
