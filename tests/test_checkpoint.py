import torch

from tests.conftest import fit


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
