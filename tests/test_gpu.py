"""GPU paths: skipped cleanly on machines without CUDA (like CI's)."""

import pytest
import torch

from tests.conftest import CONFIGS, fit, read_summary

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gpu_run_keeps_the_data_on_the_gpu_and_learns_what_the_cpu_learns(tmp_path):
    gpu = fit(tmp_path / "gpu", "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_epochs", "10")
    cpu = fit(tmp_path / "cpu", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "10")
    assert gpu.datamodule.x.device.type == "cuda"  # moved once, not per batch
    a, b = read_summary(gpu), read_summary(cpu)
    assert a["global_step"] == b["global_step"] == 320
    assert max(abs(p - q) for p, q in zip(a["learned"]["w"], b["learned"]["w"], strict=True)) < 1e-3


def test_gpu_table_run_with_the_table_defaults_converges(tmp_path):
    args = ["--config", str(CONFIGS / "csv.yaml"), "--trainer.accelerator", "gpu", "--trainer.devices", "1"]
    summary = read_summary(fit(tmp_path, *args))
    assert summary["convergence"]["converged"], summary["convergence"]
