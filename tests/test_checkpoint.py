"""last.ckpt: what it holds, exact resume from any saved step, atomic writes, divergence, broken files."""

from pathlib import Path

import pytest
import torch

from lit_linreg.callbacks import AtomicCheckpointIO
from tests.conftest import CONFIGS, command_error, fit, fit_error, last_checkpoint

SHORT = ["--report.optimum", "false"]


def same_weights(a, b) -> bool:
    return torch.equal(a.w, b.w) and torch.equal(a.b, b.b)


def test_last_checkpoint_holds_the_whole_model_and_loads_with_weights_only(tmp_path):
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--trainer.max_epochs", "2", *SHORT)
    path = last_checkpoint(cli)
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no partial file left
    checkpoint = torch.load(path, weights_only=True)
    assert torch.equal(checkpoint["state_dict"]["w"], cli.model.w.detach())
    assert checkpoint["global_step"] == 2 * cli.datamodule.plan.steps_per_epoch
    hp, data = checkpoint["hyper_parameters"], checkpoint["datamodule_hyper_parameters"]
    assert hp["feature_names"][:2] == ["age", "sex"] and hp["target"] == "progression" and hp["loss"] == "mse"
    assert data["features"] == hp["feature_names"] and "true_w" not in data  # the table's settings only
    scale = checkpoint["state_dict"]
    assert torch.equal(scale["x_mean"], cli.model.x_mean) and scale["y_scale"].item() > 1
    assert checkpoint["LinRegDataModule"]["rows"] == 442  # the held-out split's definition


def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path):
    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "6", *SHORT).model
    first = fit(tmp_path / "first", "--trainer.max_epochs", "3", *SHORT)
    resumed = fit(tmp_path / "resumed", "--trainer.max_epochs", "6", *SHORT, "--ckpt_path", str(last_checkpoint(first)))
    assert resumed.trainer.global_step == 6 * 32
    assert same_weights(resumed.model, straight)


def test_resume_mid_epoch_is_bit_identical_weights_and_logged_loss(tmp_path):
    """43 steps = one epoch of 32 plus 11: the global step is the place inside epoch 1's shuffle."""
    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "6", *SHORT)
    first = fit(tmp_path / "first", "--trainer.max_steps", "43", *SHORT)
    assert torch.load(last_checkpoint(first), weights_only=True)["global_step"] == 43
    resumed = fit(tmp_path / "resumed", "--trainer.max_epochs", "6", *SHORT, "--ckpt_path", str(last_checkpoint(first)))
    assert resumed.trainer.global_step == 6 * 32
    assert same_weights(resumed.model, straight.model)
    assert resumed.trainer.callback_metrics["train/loss"] == straight.trainer.callback_metrics["train/loss"]


@pytest.mark.slow
def test_resume_from_every_checkpoint_of_a_run_is_bit_identical(tmp_path, monkeypatch):
    """A save after every step (mid-pass, pass ends, epoch ends, the end of fit): each one resumes exactly."""
    run = ("--trainer.max_epochs", "2", "--data.batch_size", "200", "--data.passes_per_epoch", "2", *SHORT)
    # 2 passes of 3 steps (200 + 200 + 100 rows) an epoch
    straight = fit(tmp_path / "straight", *run).model
    copies = []
    save = AtomicCheckpointIO.save_checkpoint

    def save_and_copy(self, checkpoint, path, storage_options=None):
        save(self, checkpoint, path)
        copies.append(tmp_path / f"{len(copies):03d}.ckpt")
        copies[-1].write_bytes(Path(path).read_bytes())

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_and_copy)
    fit(tmp_path / "saving", *run, "--checkpoint.every_seconds", "0")
    monkeypatch.undo()
    assert [torch.load(c, weights_only=True)["global_step"] for c in copies] == list(range(1, 13))
    for copy in copies:
        resumed = fit(tmp_path / f"resumed_{copy.stem}", *run, "--ckpt_path", str(copy))
        assert resumed.trainer.global_step == 12 and same_weights(resumed.model, straight), copy.name


def test_a_write_that_dies_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2), "b": torch.tensor(1.0)}}, path)

    def dies_midway(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # as if the process were killed during the write

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2), "b": torch.tensor(0.0)}}, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(2))


def test_divergence_stops_with_one_line_and_keeps_the_last_finite_checkpoint(tmp_path):
    # With MAE the gradient is bounded, so the weights overflow float32 only after some steps at this lr.
    message = fit_error(tmp_path, "--model.lr", "2e37", "--checkpoint.every_n_epochs", "1", *SHORT)
    assert "diverged" in message and "--model.lr" in message and "2e+37" in message
    diverged_by = int(message.split("by step ")[1].split(":")[0])
    (path,) = tmp_path.glob("lightning_logs/*/checkpoints/last.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["global_step"] % 32 == 0 and checkpoint["global_step"] == diverged_by - 32  # the epoch before
    state = checkpoint["state_dict"]
    assert torch.isfinite(state["w"]).all() and torch.isfinite(state["b"])


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("saved")
    return last_checkpoint(fit(tmp_path, "--trainer.max_epochs", "1", "--data.val_fraction", "0.2", *SHORT))


def test_broken_or_foreign_checkpoints_get_one_line(tmp_path, saved_checkpoint):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(saved_checkpoint.read_bytes()[:2000])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint\n")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, foreign)
    reshaped = tmp_path / "reshaped.ckpt"  # this project's checkpoint with a w of another shape
    checkpoint = torch.load(saved_checkpoint, weights_only=True)
    checkpoint["state_dict"]["w"] = torch.zeros(5)
    torch.save(checkpoint, reshaped)
    expected = {
        tmp_path / "missing.ckpt": "no such file",
        truncated: "not a readable checkpoint",
        text: "not a torch checkpoint",
        foreign: "not a lit_linreg checkpoint",
        reshaped: "does not hold one weight per feature (4 features; w [5], x_mean [4], x_scale [4], w_average [4])",
    }
    for path, reason in expected.items():
        for subcommand in ("fit", "test"):
            message = command_error(subcommand, "--ckpt_path", str(path))
            assert str(path) in message and reason in message


def test_arguments_that_contradict_the_checkpoint_are_refused_in_one_line(tmp_path, saved_checkpoint):
    ckpt = ["--ckpt_path", str(saved_checkpoint)]
    message = fit_error(tmp_path, *ckpt, "--model.lr", "0.05", "--data.batch_size", "8")
    assert "--model.lr 0.05 (checkpoint: 0.01)" in message and "--data.batch_size 8 (checkpoint: 16)" in message
    message = command_error("test", *ckpt, "--seed_everything", "3")
    assert "--seed_everything 3 (checkpoint: 42)" in message
    message = command_error("predict", *ckpt, "--model.loss", "mse")
    assert "--model.loss mse (checkpoint: mae)" in message


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_is_refused(subcommand):
    message = command_error(subcommand)
    assert f"{subcommand} needs a trained model" in message and "--ckpt_path" in message


def test_resume_takes_every_setting_from_the_checkpoint(tmp_path):
    """No config needed: a CSV run resumes from its checkpoint alone, and ends where the straight run ends."""
    # A constant lr and no averaging: the length of the run then does not change its first steps.
    table = ["--config", str(CONFIGS / "csv.yaml"), "--model.lr_schedule", "constant", "--model.average_tail", "0"]
    straight = fit(tmp_path / "straight", *table, "--trainer.max_epochs", "4", *SHORT)
    first = fit(tmp_path / "first", *table, "--trainer.max_epochs", "2", *SHORT)
    resumed = fit(tmp_path / "resumed", "--trainer.max_epochs", "4", *SHORT, "--ckpt_path", str(last_checkpoint(first)))
    assert resumed.datamodule.hparams.path.endswith("diabetes.csv")
    assert same_weights(resumed.model, straight.model)
