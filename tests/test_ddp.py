"""DDP on 2 CPU processes learns what one process learns: every global batch is split across the ranks."""

import json

from tests.conftest import ROOT, run_train

SHORT = ["--trainer.max_epochs", "10", "--trainer.enable_progress_bar", "false"]


def test_two_process_ddp_matches_one_process(tmp_path):
    seed = ["--config", str(ROOT / "configs" / "seed.yaml"), *SHORT, "--data.batch_size", "15"]
    ddp = ["--config", str(ROOT / "configs" / "ddp.yaml")]
    runs = {}
    for name, extra in {"single": [], "ddp": ddp}.items():
        result = run_train(tmp_path / name, "fit", *seed, *extra)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = json.loads(next((tmp_path / name).glob("lightning_logs/*/summary.json")).read_text())
    single, ddp_run = runs["single"], runs["ddp"]
    assert ddp_run["global_step"] == single["global_step"] == 10 * 34  # ceil(500 / 15) steps an epoch
    single_params = [*single["learned"]["w"], single["learned"]["b"]]
    ddp_params = [*ddp_run["learned"]["w"], ddp_run["learned"]["b"]]
    assert max(abs(a - b) for a, b in zip(single_params, ddp_params, strict=True)) < 1e-5
    assert abs(single["train_loss"] - ddp_run["train_loss"]) < 1e-5
