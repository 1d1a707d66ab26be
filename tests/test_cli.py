"""The command line: configs that stack, overrides that reach the objects, links, and one-line errors."""

import contextlib
import importlib.metadata
import multiprocessing
import os
import subprocess
import sys

import pytest
import yaml

from lit_linreg.cli import cli_main
from lit_linreg.runs import claim_run_directory
from tests.conftest import CONFIGS, DIABETES, NO_PLOT, QUIET, ROOT, command_error, fit, fit_error, forked, run_train


def printed_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["fit", *args, "--print_config"])
    assert exit_.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_the_installed_command_exits_0_after_a_run(tmp_path, monkeypatch):
    """``lit-linreg`` is pip's script, ``sys.exit(entry_point())``: what the entry point returns is the status, so a
    run that went well must return None (the CLI object would be printed, with status 1)."""
    (entry_point,) = importlib.metadata.entry_points(group="console_scripts", name="lit-linreg")
    args = ["fit", "--trainer.default_root_dir", str(tmp_path), *NO_PLOT, *QUIET, "--trainer.max_epochs", "1"]
    monkeypatch.setattr(sys, "argv", ["lit-linreg", *args, "--report.optimum", "false"])
    with pytest.raises(SystemExit) as exit_:
        sys.exit(entry_point.load()())
    assert exit_.value.code is None
    assert (tmp_path / "lightning_logs" / "version_0" / "summary.json").exists()


def test_no_arguments_is_the_seed_config(capsys):
    assert printed_config(capsys) == printed_config(capsys, "--config", str(CONFIGS / "seed.yaml"))


def test_configs_stack(capsys):
    configs = ["--config", str(CONFIGS / "seed.yaml"), "--config", str(CONFIGS / "blog.yaml")]
    config = printed_config(capsys, *configs)
    assert config["data"]["noise_mean"] == 1.0 and config["data"]["true_b"] == 0.0
    assert config["data"]["true_w"] == [8.1, 2.0, 2.0, 4.0]


def test_overrides_reach_the_instantiated_objects(tmp_path):
    cli = fit(tmp_path, "--model.lr", "0.05", "--data.batch_size", "32", "--trainer.max_epochs", "2")
    assert cli.model.hparams.lr == 0.05 and cli.trainer.optimizers[0].param_groups[0]["lr"] == 0.05
    assert cli.datamodule.plan.batch_size == 32
    assert cli.trainer.max_epochs == 2 and cli.trainer.global_step == 2 * 16  # 500 rows / 32 = 16 steps


def test_columns_reach_the_model_through_links(tmp_path):
    cli = fit(tmp_path, "--data.true_w", "[1, 2, 3]", "--data.feature_names", "null", "--trainer.max_epochs", "1")
    assert cli.model.w.shape == (3,) and cli.model.feature_names == ["x1", "x2", "x3"]
    assert cli.model.hparams.target == "relationships"


def test_a_single_feature_needs_no_brackets(tmp_path):
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--data.features", "bmi", "--trainer.max_epochs", "2")
    assert cli.model.feature_names == ["bmi"]


def test_table_settings_are_chosen_from_the_table(tmp_path):
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--data.path", str(DIABETES))
    plan = cli.datamodule.plan
    assert cli.model.plan is plan and cli.model.hparams.loss == "mse"  # least squares: a table's default
    per_pass = -(-442 // plan.batch_size)
    assert plan.batch_size >= 4 * 11  # 4 rows a parameter at least
    assert plan.passes_per_epoch == -(-32 // per_pass) and plan.steps_per_epoch == plan.passes_per_epoch * per_pass
    assert cli.trainer.max_epochs == plan.epochs == min(200, max(8, -(-2000 // plan.steps_per_epoch)))
    assert cli.model.lr == plan.lr == pytest.approx(0.5)  # mse's Newton-sized step on whitened columns


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
        (["--data.batch_size", "abc"], ["data.batch_size", "abc"]),
        (["--model.loss", "l1"], ["model.loss", "l1"]),
        (["--no_such_option", "1"], ["--no_such_option"]),
        (["--seed_everything", "true"], ["--seed_everything", "True"]),
        (["--log_level", "LOUD"], ["--log_level", "LOUD"]),
        (["--report.covariance", "hc9"], ["report.covariance", "hc9"]),
        (["--data.passes_per_epoch", "0"], ["--data.passes_per_epoch", "0"]),
        (["--trainer.callbacks+", "lit_linreg.callbacks.LogLines"], ["enable_progress_bar=False", "LogLines"]),
        (["--seed_everything", "-1"], ["--seed_everything must be in [0, 2**32), got -1"]),
        (["--seed_everything", str(2**32)], ["--seed_everything must be in [0, 2**32), got 4294967296"]),
        (["--data.encoding", "no-such-codec"], ["--data.encoding 'no-such-codec'"]),
        (["--report.bootstrap", "1"], ["--report.bootstrap 1 is too few resamples", "at least 100"]),
        (["--report.alpha", "1.5"], ["--report.alpha must be in (0, 1), got 1.5"]),
        (["--predict.interval", "prediction"], ["--predict.interval prediction", "to predict"]),  # fit has none
    ],
)
def test_bad_values_get_a_one_line_error(tmp_path, args, names):
    message = fit_error(tmp_path, *args)
    for name in names:
        assert name in message


@pytest.mark.slow
def test_bad_value_from_the_shell_exits_non_zero_without_traceback(tmp_path):
    result = run_train(tmp_path, "fit", "--data.batch_size", "x")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "lightning_logs").exists()  # nothing written for a run that never started


def test_an_output_directory_that_cannot_be_made_is_refused_before_anything_runs(tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    message = command_error("fit", "--trainer.default_root_dir", str(a_file / "runs"))
    assert message == f"error: --trainer.default_root_dir {a_file / 'runs'}: {a_file} is a file, not a directory"
    monkeypatch.setattr("lit_linreg.cli.os.access", lambda path, mode: False)  # as a read-only directory answers
    message = command_error("fit", "--trainer.default_root_dir", str(tmp_path / "runs"))
    assert message == f"error: --trainer.default_root_dir {tmp_path / 'runs'}: {tmp_path} is not writable"


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_run_quietly(tmp_path):
    """`train.py fit | head -0`: no BrokenPipeError traceback, the status a shell gives a writer whose pipe closed.
    The reader leaves before the run writes anything, so every write the run makes meets the closed pipe."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "fit", "--trainer.max_epochs", "1", *NO_PLOT],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process.stdout.close()
    assert process.wait(timeout=120) == 141 and process.stderr.read() == b""


def _fit_when_told(cwd, output, go) -> None:
    """A fit in a forked copy of this process, in ``cwd``, printing to the file ``output``, once ``go`` is set."""
    os.chdir(cwd)
    sys.stdout = open(output, "w")  # closed with the process, which multiprocessing flushes
    # On the CPU: a process forked from one that has used CUDA cannot use it again.
    args = ["fit", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--report.optimum", "false"]
    if go.wait(timeout=60):
        cli_main([*args, *NO_PLOT, *QUIET])


def test_fits_started_together_write_a_run_directory_each(tmp_path):
    """Four processes in one working directory, let go at the same moment, each with its own summary and
    checkpoint (Lightning's own choice of version_N lists the directories first, and runs that start together
    take the same one). Forked from this one, with Lightning imported: an interpreter start is ~8 s here."""
    outputs, go = [tmp_path / f"{i}.out" for i in range(4)], multiprocessing.get_context("fork").Event()
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(forked(_fit_when_told, tmp_path, out, go)) for out in outputs]
        go.set()
        for process in processes:
            process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * 4
    runs = sorted((tmp_path / "lightning_logs").iterdir())
    assert [run.name for run in runs] == [f"version_{i}" for i in range(4)]
    last_lines = [out.read_text().splitlines()[-1] for out in outputs]
    assert sorted(line.split(" in ")[-1] for line in last_lines) == [f"lightning_logs/{run.name}" for run in runs]
    for run in runs:
        assert (run / "summary.json").exists() and (run / "checkpoints" / "last.ckpt").exists()


def test_linear_schedule_without_a_run_length_is_refused(tmp_path):
    message = fit_error(tmp_path, "--model.lr_schedule", "linear", "--trainer.max_epochs", "-1")
    assert "--model.lr_schedule linear" in message and "--trainer.max_epochs" in message
    # Refused once training began, in a run directory made for it: the directory is gone with the run.
    assert not (tmp_path / "lightning_logs").exists()


def test_fits_started_together_never_share_a_run_directory(tmp_path):
    with multiprocessing.get_context("fork").Pool(8) as pool:
        claimed = pool.map(claim_run_directory, [tmp_path] * 32)
    assert len(set(claimed)) == 32 and sorted(p.name for p in claimed) == sorted(f"version_{i}" for i in range(32))
    (tmp_path / "lightning_logs" / "version_same").mkdir()  # a directory named by --trainer.logger's version
    assert claim_run_directory(tmp_path).name == "version_32"


def test_every_subcommand_is_offered_where_none_was_named_first(capsys):
    """A command builds only its own subcommand's parser; --help and a misspelling see all four."""
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    text = capsys.readouterr().out
    assert all(f"    {name}" in text for name in ("fit", "validate", "test", "predict")), text
    offered = command_error("fitt").split("choose from")[1]  # argparse quotes the names or not, by Python version
    assert all(name in offered for name in ("fit", "validate", "test", "predict")), offered


def test_help_documents_every_argument(capsys):
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    text = capsys.readouterr().out
    for option in ("--data.path", "--data.categorical", "--data.missing", "--model.precondition", "--report.bootstrap"):
        assert option in text
    assert "command_error" not in text and command_error  # (imported for the module's other tests)
