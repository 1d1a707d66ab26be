from pathlib import Path

import pytest
import torch

from tests.conftest import fit, fit_error


def last_checkpoint(root: Path) -> Path:
    return root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"


def same_weights(a, b) -> bool:
    return torch.equal(a.w, b.w) and torch.equal(a.b, b.b)


def test_last_checkpoint_holds_the_final_state_and_loads_with_weights_only(tmp_path):
    cli = fit(tmp_path, "--trainer.max_epochs", "2")
    assert [p.name for p in last_checkpoint(tmp_path).parent.iterdir()] == ["last.ckpt"]  # no partial file left
    checkpoint = torch.load(last_checkpoint(tmp_path), weights_only=True)
    assert torch.equal(checkpoint["state_dict"]["w"], cli.model.w.detach())
    assert checkpoint["global_step"] == 64
    assert checkpoint["datamodule_hyper_parameters"]["true_w"] == [8.1, 2.0, 2.0, 4.0]


def test_resume_at_an_epoch_boundary_is_bit_identical(tmp_path):
    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "6").model
    fit(tmp_path / "first", "--trainer.max_epochs", "3")
    resumed = fit(
        tmp_path / "resumed", "--trainer.max_epochs", "6", "--ckpt_path", str(last_checkpoint(tmp_path / "first"))
    )
    assert resumed.trainer.global_step == 6 * 32
    assert same_weights(resumed.model, straight)


def test_resume_mid_epoch_is_bit_identical_weights_and_logged_loss(tmp_path):
    """56 steps = one epoch of 32 plus 3 calls of 8: the checkpoint holds the place inside epoch 1's shuffle."""
    eight = ("--data.steps_per_call", "8")  # 4 calls an epoch
    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "6", *eight)
    fit(tmp_path / "first", "--trainer.max_steps", "56", *eight)
    checkpoint = torch.load(last_checkpoint(tmp_path / "first"), weights_only=True)
    assert checkpoint["global_step"] == 56 and checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    resume = ("--trainer.max_epochs", "6", *eight, "--ckpt_path", str(last_checkpoint(tmp_path / "first")))
    resumed = fit(tmp_path / "resumed", *resume)
    assert resumed.trainer.global_step == 6 * 32
    assert same_weights(resumed.model, straight.model)
    assert resumed.trainer.callback_metrics["train/loss"] == straight.trainer.callback_metrics["train/loss"]


def test_every_seconds_zero_saves_after_every_call(tmp_path, monkeypatch):
    from lightning.pytorch import Trainer

    saves = []
    save = Trainer.save_checkpoint
    monkeypatch.setattr(
        Trainer, "save_checkpoint", lambda self, *a, **k: (saves.append(self.global_step), save(self, *a, **k))
    )
    fit(tmp_path, "--trainer.max_epochs", "2", "--checkpoint.every_seconds", "0", "--data.steps_per_call", "8")
    assert saves == list(range(8, 65, 8))  # after every call of 8 steps (and nothing more at the end)


def test_a_write_that_dies_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    from lit_linreg.checkpoint import AtomicCheckpointIO

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
    message = fit_error(tmp_path, "--model.lr", "2e37", "--checkpoint.every_n_epochs", "1")
    assert "diverged" in message and "--model.lr" in message and "2e+37" in message
    checkpoint = torch.load(last_checkpoint(tmp_path), weights_only=True)
    assert checkpoint["global_step"] == 9 * 32  # the last epoch end before the divergence at step 312
    state = checkpoint["state_dict"]
    assert torch.isfinite(state["w"]).all() and torch.isfinite(state["b"])


@pytest.fixture
def saved_checkpoint(tmp_path) -> Path:
    fit(tmp_path / "saved", "--trainer.max_epochs", "1")
    return last_checkpoint(tmp_path / "saved")


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


def test_resume_from_every_checkpoint_of_a_run_is_bit_identical(tmp_path, monkeypatch):
    """A save after every call (8 steps): mid-epoch, epoch ends, the end of fit. Each one resumes exactly."""
    from lit_linreg.checkpoint import AtomicCheckpointIO

    straight = fit(tmp_path / "straight", "--trainer.max_epochs", "3").model
    copies = []
    save = AtomicCheckpointIO.save_checkpoint

    def save_and_copy(self, checkpoint, path, storage_options=None):
        save(self, checkpoint, path)
        copies.append(tmp_path / f"{len(copies):03d}.ckpt")
        copies[-1].write_bytes(Path(path).read_bytes())

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save_and_copy)
    fit(
        tmp_path / "saving",
        "--trainer.max_epochs",
        "3",
        "--checkpoint.every_seconds",
        "0",
        "--data.steps_per_call",
        "8",
    )
    monkeypatch.undo()
    steps = [torch.load(c, weights_only=True)["global_step"] for c in copies]
    assert steps == list(range(8, 97, 8))
    for copy in copies:
        resume = ("--trainer.max_epochs", "3", "--data.steps_per_call", "8", "--ckpt_path", str(copy))
        resumed = fit(tmp_path / f"resumed_{copy.stem}", *resume)
        assert resumed.trainer.global_step == 96 and same_weights(resumed.model, straight), copy.name
