"""Real training processes killed with SIGKILL at several moments, resumed from last.ckpt: same bits at the end."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

FAULT_INJECTION = Path(__file__).with_name("fault_injection")
# Short and checkpoint-heavy: a save after every training_step call (8 SGD steps).
RUN = ["--trainer.max_epochs", "40", "--trainer.enable_progress_bar", "false", "--checkpoint.every_seconds", "0"]
RUN += ["--data.steps_per_call", "8"]  # 4 calls an epoch: saves (and kills) land mid-epoch too
DDP = ["--config", str(ROOT / "configs" / "ddp.yaml")]


def start(cwd: Path, *args: str, slow_fsync: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAULT_INJECTION), str(ROOT)])}
    env["LIT_LINREG_SLOW_FSYNC"] = str(slow_fsync)
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "fit", *RUN, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: DDP's second rank is killed with it
    )


def newest_checkpoint(cwd: Path) -> Path | None:
    versions = sorted(cwd.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))
    found = [v / "checkpoints" / "last.ckpt" for v in versions if (v / "checkpoints" / "last.ckpt").exists()]
    return found[-1] if found else None


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the training process"
        time.sleep(0.002)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def saves_seen(cwd: Path) -> int:
    path = newest_checkpoint(cwd)
    return path.stat().st_mtime_ns if path else 0


def resume_args(cwd: Path) -> list[str]:
    path = newest_checkpoint(cwd)
    return ["--ckpt_path", str(path)] if path else []


def finish(cwd: Path, *args: str) -> dict:
    process = start(cwd, *args, *resume_args(cwd))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    return torch.load(newest_checkpoint(cwd), weights_only=True)


def assert_same_bits(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"] == 40 * 32
    for name in ("w", "b"):
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name


def kill_at_startup(cwd: Path, *args: str) -> None:
    process = start(cwd, *args, *resume_args(cwd))
    time.sleep(1.0)  # still importing: nothing written yet
    kill_group(process)


def kill_mid_epoch(cwd: Path, *args: str) -> None:
    before = saves_seen(cwd)
    process = start(cwd, *args, *resume_args(cwd))
    wait_for(lambda: saves_seen(cwd) != before and newest_checkpoint(cwd) is not None)
    time.sleep(0.05)  # a few calls later, between or inside steps
    kill_group(process)


def kill_during_a_checkpoint_write(cwd: Path, *args: str) -> None:
    for stale in cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial"):
        stale.unlink()  # left by an earlier kill: wait for this process's own write
    process = start(cwd, *args, *resume_args(cwd), slow_fsync=0.5)
    wait_for(lambda: any(cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial")))
    kill_group(process)
    assert any(cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial")), "killed mid-write"


def test_repeated_sigkills_then_resume_end_bit_identical(tmp_path):
    reference = finish(tmp_path / "uninterrupted")
    cwd = tmp_path / "killed"
    kill_at_startup(cwd)
    kill_mid_epoch(cwd)
    kill_during_a_checkpoint_write(cwd)
    kill_mid_epoch(cwd)
    kill_during_a_checkpoint_write(cwd)
    assert_same_bits(finish(cwd), reference)


def kill_one_rank(cwd: Path, rank: int) -> None:
    """Starts (or resumes) a 2-process DDP run, SIGKILLs one rank mid-run, checks the other stops by itself."""
    before = saves_seen(cwd)
    process = start(cwd, *DDP, *resume_args(cwd))  # rank 0 is this process; it launches rank 1 as its child
    wait_for(lambda: saves_seen(cwd) != before and newest_checkpoint(cwd) is not None)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    (rank_1,) = [int(pid) for pid in children if "train.py" in Path(f"/proc/{pid}/cmdline").read_text()]
    killed, survivor = (rank_1, rank_1) if rank == 1 else (process.pid, rank_1)
    os.kill(killed, signal.SIGKILL)
    started = time.monotonic()
    try:
        if rank == 1:
            process.wait(timeout=60)
        else:
            wait_for(lambda: not Path(f"/proc/{survivor}").exists() or _is_zombie(survivor), timeout=60)
    except (subprocess.TimeoutExpired, AssertionError):
        kill_group(process)
        pytest.fail(f"the surviving rank hung on a collective after rank {rank} died")
    assert time.monotonic() - started < 30
    if process.poll() is None:
        kill_group(process)


def _is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_ddp_a_killed_rank_stops_the_other_and_the_run_resumes_bit_identical(tmp_path):
    reference = finish(tmp_path / "uninterrupted", *DDP)
    cwd = tmp_path / "killed"
    kill_one_rank(cwd, rank=1)
    kill_one_rank(cwd, rank=0)
    assert_same_bits(finish(cwd, *DDP), reference)
