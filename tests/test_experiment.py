"""The tutorial's experiment end to end: the planted weights come back."""

import torch

from tests.conftest import ROOT, fit, read_summary


def test_recovers_planted_weights_in_1600_counted_steps(tutorial_run, capsys):
    cli, summary = tutorial_run
    assert summary["global_step"] == cli.trainer.global_step == 1600
    assert summary["epochs"] == 50
    errors = [abs(a - b) for a, b in zip(summary["learned"]["w"], summary["true"]["w"], strict=True)]
    assert max(errors) < 0.02, errors
    assert abs(summary["learned"]["b"] - 1.1) < 0.02
    assert summary["feature_names"] == ["appearance", "personality", "wealth", "inner_quality"]
    assert 0 < summary["train_loss"] < 0.05  # noise std 0.01: the MAE at the truth is ~0.008
    assert summary["fit_seconds"] > 0


def test_summary_matches_the_model_and_train_loss_is_full_data(tutorial_run):
    cli, summary = tutorial_run
    assert summary["learned"]["w"] == cli.model.w.tolist()
    x, y = cli.datamodule.train_data
    assert summary["train_loss"] == (x @ cli.model.w + cli.model.b - y).abs().mean().item()


def test_prints_the_table_and_log_dir(tmp_path, capsys):
    cli = fit(tmp_path, "--trainer.max_epochs", "2")
    out = capsys.readouterr().out
    assert "feature" in out and "learned" in out and "error" in out
    for name in ["appearance", "personality", "wealth", "inner_quality", "bias"]:
        assert name in out
    assert cli.trainer.log_dir in out
    assert read_summary(cli)["global_step"] == 64


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = fit(tmp_path / "a", "--trainer.max_epochs", "3").model.w.detach()
    b = fit(tmp_path / "b", "--trainer.max_epochs", "3").model.w.detach()
    c = fit(tmp_path / "c", "--trainer.max_epochs", "3", "--seed_everything", "5").model.w.detach()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_max_steps_is_honoured(tmp_path):
    """global_step counts optimizer steps, so max_steps stops the run mid-epoch, even inside a call."""
    cli = fit(tmp_path, "--trainer.max_steps", "43", "--data.steps_per_call", "8")
    assert cli.trainer.global_step == 43 and read_summary(cli)["global_step"] == 43


def test_steps_per_call_changes_nothing_but_speed(tmp_path):
    runs = [fit(tmp_path / str(k), "--trainer.max_epochs", "4", "--data.steps_per_call", str(k)) for k in (1, 5, 32)]
    assert all(run.trainer.global_step == 4 * 32 for run in runs)
    assert all(torch.equal(run.model.w, runs[0].model.w) and torch.equal(run.model.b, runs[0].model.b) for run in runs)
    losses = [read_summary(run)["train_loss"] for run in runs]
    assert losses[0] == losses[1] == losses[2]


def test_validation_and_test_report_metrics(tmp_path):
    cli = fit(tmp_path, "--trainer.max_epochs", "30", "--model.lr", "0.05", "--data.val_fraction", "0.2")
    metrics = cli.trainer.callback_metrics
    assert {"val/mae", "val/mse", "val/r2"} <= set(metrics)
    assert metrics["val/r2"] > 0.99
    (result,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    assert result["test/mae"] < 0.1


def test_blog_config_reports_the_intercept_its_data_really_has(tmp_path):
    """The tutorial's generator never uses b = 1.1: the data's intercept is the noise mean, 1.0."""
    blog = ["--config", str(ROOT / "configs" / "seed.yaml"), "--config", str(ROOT / "configs" / "blog.yaml")]
    summary = read_summary(fit(tmp_path, *blog))
    assert summary["true"]["b"] == 1.0
    assert abs(summary["learned"]["b"] - 1.0) < 0.02


def test_predict_on_the_planted_data_writes_every_row(tmp_path, capsys):
    import csv

    from lit_linreg.cli import cli_main

    cli = fit(tmp_path, "--trainer.max_epochs", "2")
    checkpoint = str(cli.trainer.log_dir) + "/checkpoints/last.ckpt"
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    cli_main(["predict", "--ckpt_path", checkpoint, *quiet])
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " predictions written to " in line]
    with open(line.split(" written to ")[1]) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 500 and list(rows[0]) == ["appearance", "personality", "wealth", "inner_quality", "prediction"]
    x = torch.tensor([[float(r[name]) for name in list(r)[:4]] for r in rows])
    expected = x @ cli.model.w.detach() + cli.model.b.detach()
    assert torch.allclose(torch.tensor([float(r["prediction"]) for r in rows]), expected, atol=1e-3)
