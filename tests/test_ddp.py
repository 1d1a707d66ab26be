"""DDP on 2 CPU processes learns what one process learns: every global batch is split across the ranks."""

import json

import pytest

from tests.conftest import CONFIGS, fit, read_summary, run_train

SHORT = ["--trainer.max_epochs", "10", "--report.plot", "false"]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    seed = ["--config", str(CONFIGS / "seed.yaml"), *SHORT, "--data.batch_size", "15"]  # slices of 8 and 7 rows
    single = read_summary(fit(tmp_path / "single", *seed))
    result = run_train(tmp_path / "ddp", "fit", *seed, "--config", str(CONFIGS / "ddp.yaml"))  # DDP re-launches it
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]  # quiet under DDP too
    ddp = json.loads(next((tmp_path / "ddp").glob("lightning_logs/*/summary.json")).read_text())
    assert ddp["global_step"] == single["global_step"] == 10 * 34  # ceil(500 / 15) steps an epoch
    single_params = [*single["learned"]["w"], single["learned"]["b"]]
    ddp_params = [*ddp["learned"]["w"], ddp["learned"]["b"]]
    assert max(abs(a - b) for a, b in zip(single_params, ddp_params, strict=True)) < 1e-5
    assert abs(single["train_loss"] - ddp["train_loss"]) < 1e-5
