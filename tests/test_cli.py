import pytest
import yaml

from lit_linreg.cli import cli_main
from tests.conftest import ROOT, fit, fit_error, run_train


def printed_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["fit", *args, "--print_config"])
    assert exit_.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_no_arguments_is_the_seed_config(capsys):
    assert printed_config(capsys) == printed_config(capsys, "--config", str(ROOT / "configs" / "seed.yaml"))


def test_overrides_reach_model_data_and_trainer(capsys):
    config = printed_config(capsys, "--model.lr", "0.05", "--data.batch_size", "32", "--trainer.max_epochs", "20")
    assert config["model"]["lr"] == 0.05
    assert config["data"]["batch_size"] == 32
    assert config["trainer"]["max_epochs"] == 20


def test_overrides_reach_the_instantiated_objects(tmp_path):
    cli = fit(tmp_path, "--model.lr", "0.05", "--data.batch_size", "32", "--trainer.max_epochs", "2")
    assert cli.model.hparams.lr == 0.05 and cli.trainer.optimizers[0].param_groups[0]["lr"] == 0.05
    assert cli.datamodule.hparams.batch_size == 32
    assert cli.trainer.max_epochs == 2 and cli.trainer.global_step == 2 * 16  # 500 rows / 32 = 16 steps


def test_feature_count_reaches_the_model_through_the_link(tmp_path):
    cli = fit(tmp_path, "--data.true_w", "[1, 2, 3]", "--data.feature_names", "null", "--trainer.max_epochs", "1")
    assert cli.model.w.shape == (3,) and cli.model.feature_names == ["x1", "x2", "x3"]


def test_configs_stack(capsys):
    configs = ["--config", str(ROOT / "configs" / "seed.yaml"), "--config", str(ROOT / "configs" / "blog.yaml")]
    config = printed_config(capsys, *configs)
    assert config["data"]["noise_mean"] == 1.0 and config["data"]["true_b"] == 0.0
    assert config["data"]["true_w"] == [8.1, 2.0, 2.0, 4.0]


def test_config_is_saved_and_rerun_into_the_same_directory_works(tmp_path):
    args = ["--trainer.max_epochs", "1", "--trainer.logger.class_path", "TensorBoardLogger"]
    args += ["--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.logger.init_args.version", "same"]
    first = fit(tmp_path, *args)
    saved = yaml.safe_load((tmp_path / "lightning_logs" / "same" / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 1
    second = fit(tmp_path, *args)
    assert first.trainer.log_dir == second.trainer.log_dir


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--model.lr", "0"], ["--model.lr", "0"]),
        (["--model.lr", "-0.5"], ["--model.lr", "-0.5"]),
        (["--data.batch_size", "0"], ["--data.batch_size", "0"]),
        (["--data.n_samples", "0"], ["--data.n_samples", "0"]),
        (["--data.noise_std", "-1"], ["--data.noise_std", "-1"]),
        (["--data.val_fraction", "1"], ["--data.val_fraction", "1"]),
        (["--data.val_fraction", "-0.1"], ["--data.val_fraction", "-0.1"]),
        (["--data.true_w", "[1, 2]"], ["--data.true_w", "--data.feature_names", "2", "4"]),
    ],
)
def test_bad_values_get_a_one_line_error(tmp_path, args, names):
    message = fit_error(tmp_path, *args)
    for name in names:
        assert name in message


def test_bad_value_from_the_shell_exits_non_zero_without_traceback(tmp_path):
    result = run_train(tmp_path, "fit", "--data.batch_size", "0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: --data.batch_size must be >= 1, got 0"
    assert not (tmp_path / "lightning_logs").exists()  # nothing written for a run that never started


def test_progress_bar_redraws_at_most_every_interval_and_can_be_turned_off(tmp_path, monkeypatch):
    from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

    from lit_linreg.report import ThrottledProgressBar

    default = cli_main(["fit", "--trainer.default_root_dir", str(tmp_path / "default"), "--trainer.max_epochs", "1"])
    assert isinstance(default.trainer.progress_bar_callback, ThrottledProgressBar)
    assert fit(tmp_path / "quiet", "--trainer.max_epochs", "1").trainer.progress_bar_callback is None

    draws = []
    refresh = Tqdm.refresh
    monkeypatch.setattr(Tqdm, "refresh", lambda self, *a, **k: (draws.append(self.desc), refresh(self, *a, **k)))
    for interval, most in (("3600", 1), ("0", None)):
        draws.clear()
        bar = f'{{"class_path": "lit_linreg.report.ThrottledProgressBar", "init_args": {{"interval": {interval}}}}}'
        args = ["--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "3", "--data.steps_per_call", "8"]
        args += ["--trainer.callbacks+", bar]
        cli = cli_main(["fit", *args])
        assert cli.trainer.progress_bar_callback.interval == float(interval)  # the configured bar, not a second
        training_draws = [d for d in draws if d.startswith("Epoch")]
        if most is not None:
            assert len(training_draws) <= most  # once an hour: only the first draw of the run
        else:
            assert len(training_draws) >= 3 * 4  # unthrottled: at least once per call (4 calls an epoch)


def test_linear_schedule_without_a_run_length_is_refused(tmp_path):
    message = fit_error(tmp_path, "--model.lr_schedule", "linear", "--trainer.max_epochs", "-1")
    assert "--model.lr_schedule linear" in message
