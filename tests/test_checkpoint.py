from pathlib import Path

import pytest
import torch

from tests.conftest import fit, fit_error


def test_checkpoint_loads_with_weights_only(tmp_path):
    cli = fit(tmp_path, "--trainer.max_epochs", "2")
    (path,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    assert torch.equal(checkpoint["state_dict"]["w"], cli.model.w.detach())
    assert checkpoint["datamodule_hyper_parameters"]["true_w"] == [8.1, 2.0, 2.0, 4.0]


def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path):
    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "6").model
    fit(tmp_path / "first", "--trainer.max_epochs", "3")
    (checkpoint,) = (tmp_path / "first" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    resumed = fit(tmp_path / "resumed", "--trainer.max_epochs", "6", "--ckpt_path", str(checkpoint))
    assert resumed.trainer.global_step == 6 * 32
    assert torch.equal(resumed.model.w, straight.w) and torch.equal(resumed.model.b, straight.b)


def test_divergence_stops_with_one_line_and_keeps_the_last_finite_checkpoint(tmp_path):
    # With MAE the gradient is bounded, so the weights overflow float32 only after some steps at this lr.
    message = fit_error(tmp_path, "--model.lr", "2e37")
    assert "diverged" in message and "--model.lr" in message and "2e+37" in message
    checkpoints = list((tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert checkpoints, "the epochs before the divergence left a checkpoint"
    for path in checkpoints:
        state = torch.load(path, weights_only=True)["state_dict"]
        assert torch.isfinite(state["w"]).all() and torch.isfinite(state["b"])


@pytest.fixture
def saved_checkpoint(tmp_path) -> Path:
    fit(tmp_path / "saved", "--trainer.max_epochs", "1")
    return next((tmp_path / "saved").glob("lightning_logs/version_0/checkpoints/*.ckpt"))


def test_broken_or_foreign_checkpoints_get_one_line(tmp_path, saved_checkpoint):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(saved_checkpoint.read_bytes()[:2000])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint\n")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, foreign)
    expected = {
        tmp_path / "missing.ckpt": "no such file",
        truncated: "not a readable checkpoint",
        text: "not a torch checkpoint",
        foreign: "not a lit_linreg checkpoint",
    }
    for path, reason in expected.items():
        message = fit_error(tmp_path / "run", "--ckpt_path", str(path))
        assert str(path) in message and reason in message


def test_resume_with_other_hyperparameters_is_refused(tmp_path, saved_checkpoint):
    message = fit_error(tmp_path / "run", "--ckpt_path", str(saved_checkpoint), "--model.lr", "0.05")
    assert "--model.lr 0.05 (checkpoint: 0.01)" in message
    message = fit_error(tmp_path / "run", "--ckpt_path", str(saved_checkpoint), "--seed_everything", "3")
    assert "--seed_everything 3 (checkpoint: 42)" in message
