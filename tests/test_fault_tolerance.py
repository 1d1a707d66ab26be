"""Real training processes interrupted at several moments and resumed from last.ckpt: the same bits at the end."""

import json
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from tests.conftest import CONFIGS, DIABETES, ROOT, fit, forked, last_checkpoint

pytestmark = pytest.mark.slow

# Short and checkpoint-heavy: a save after every step, so kills land between saves and inside them.
EPOCHS = 10  # of 32 steps
RUN = ["--trainer.max_epochs", str(EPOCHS), "--checkpoint.every_seconds", "0"]
# On the CPU wherever the suite runs: a process forked from one that has used CUDA cannot use it again.
RUN += ["--report.optimum", "false", "--report.plot", "false", "--trainer.accelerator", "cpu"]
# Batches of 15 rows: each global batch splits unevenly across the two ranks (8 + 7). A save at every epoch end
# (34 steps) rather than every step: under DDP each save is a collective too, and the kills need only some save.
DDP = ["--config", str(CONFIGS / "ddp.yaml"), "--trainer.max_epochs", "4", "--data.batch_size", "15"]
DDP += ["--checkpoint.every_seconds", "3600", "--checkpoint.every_n_epochs", "1"]


def start(cwd: Path, *args: str) -> subprocess.Popen:
    """``train.py fit`` as a user starts it, in a process of its own (and for DDP, the second rank's too)."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), "fit", *RUN, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: DDP's second rank is killed with it
    )


def checkpoints(cwd: Path) -> list[Path]:
    versions = sorted(cwd.glob("lightning_logs/version_*"), key=lambda p: int(p.name.split("_")[1]))
    return [v / "checkpoints" / "last.ckpt" for v in versions if (v / "checkpoints" / "last.ckpt").exists()]


def saved_step(cwd: Path) -> int:
    """The global step of the newest checkpoint (0 before any), read while the process may be writing one."""
    found = checkpoints(cwd)
    if not found:
        return 0
    try:
        return torch.load(found[-1], weights_only=True)["global_step"]
    except Exception:  # replaced by a rename while we read it: try again later
        return 0


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the training process"
        # Each look loads a checkpoint: every 50 ms leaves the cores to the processes being watched.
        time.sleep(0.05)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def resume_args(cwd: Path) -> list[str]:
    found = checkpoints(cwd)
    return ["--ckpt_path", str(found[-1])] if found else []


def finish(cwd: Path, *args: str) -> dict:
    """Runs (or resumes) to the end as a real process, quietly; returns its last checkpoint."""
    process = start(cwd, *args, *resume_args(cwd))
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0 and stderr == "", stderr[-3000:]
    return torch.load(checkpoints(cwd)[-1], weights_only=True)


def finish_in_process(tmp_path: Path, *args: str) -> dict:
    """A run (or a resume) to the end, started from this process (an interpreter start costs seconds); its last
    checkpoint."""
    return torch.load(last_checkpoint(fit(tmp_path, *RUN, *args)), weights_only=True)


def assert_same_bits(a: dict, b: dict) -> None:
    assert a["global_step"] == b["global_step"]
    for name in ("w", "b"):
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name


def run_directories(cwd: Path) -> list[Path]:
    return list(cwd.glob("lightning_logs/version_*"))


def _train_forked(cwd: Path, hang_in_fsync: bool, args: list[str]) -> None:
    """The run, in a forked copy of this process (``forked``), its first fsync hanging if asked."""
    if hang_in_fsync:
        # The first fsync never returns. Only checkpoint writes fsync, between writing .last.ckpt.partial and
        # renaming it over last.ckpt: a test that sees the partial file kills the process mid-write, every time.
        fsync = os.fsync

        def hanging_fsync(fd: int) -> None:
            fsync(fd)
            threading.Event().wait()  # until the test kills the process

        os.fsync = hanging_fsync
    sys.stdout = open(os.devnull, "w")  # the process is killed: nothing to close
    fit(cwd, *RUN, *args)


def kill_forked(process: multiprocessing.Process) -> None:
    """SIGKILL, and a check that it was the kill that ended the process (not an error before it)."""
    os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=30)
    assert process.exitcode == -signal.SIGKILL


def kill_mid_training(cwd: Path) -> None:
    """Kills once training has gone at least 100 steps past the last resume point: mid-epoch, between saves."""
    before = saved_step(cwd)
    with forked(_train_forked, cwd, False, resume_args(cwd)) as process:
        wait_for(lambda: saved_step(cwd) > before + 100)
        kill_forked(process)
    assert 0 < saved_step(cwd) < EPOCHS * 32, "the kill must land before the end of the run"


def kill_during_a_checkpoint_write(cwd: Path) -> None:
    """Kills while the first save of a resumed run is being written: a hanging fsync holds the write open, so the
    kill lands there however fast the machine is."""
    before, directories = saved_step(cwd), len(run_directories(cwd))
    for stale in cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial"):
        stale.unlink()  # left by an earlier kill: wait for this process's own write
    with forked(_train_forked, cwd, True, resume_args(cwd)) as process:
        wait_for(lambda: any(cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial")))
        kill_forked(process)
    assert any(cwd.glob("lightning_logs/version_*/checkpoints/.last.ckpt.partial")), "killed mid-write"
    assert saved_step(cwd) == before and len(run_directories(cwd)) == directories + 1  # nothing complete


def test_repeated_sigkills_then_resume_end_bit_identical(tmp_path):
    """Each kill lands in a run resumed from the previous one's last complete checkpoint. The one mid-write
    leaves a run directory with no complete checkpoint, as a kill at start-up would: resuming skips it. The killed
    runs are forked processes; the resume that finishes reads only files, so it runs in this one."""
    reference = finish_in_process(tmp_path / "uninterrupted")
    cwd = tmp_path / "killed"
    kill_mid_training(cwd)
    kill_during_a_checkpoint_write(cwd)
    assert_same_bits(finish_in_process(cwd, *resume_args(cwd)), reference)


TABLE = ["--config", str(CONFIGS / "csv.yaml"), "--data.path", str(DIABETES), "--trainer.max_epochs", "60"]
TABLE += ["--checkpoint.every_seconds", "3600"]  # no save before the interrupt


def test_sigterm_stops_as_ctrl_c_does(tmp_path):
    """What a batch scheduler, `docker stop` or `kill` sends, from outside the process, once its first epoch is
    done: the exit status of that signal (143), summary.json marked interrupted, last.ckpt at the step reached,
    and the command that resumes it."""
    progress = '{"class_path": "lit_linreg.callbacks.LogLines", "init_args": {"every_seconds": 0}}'  # every epoch
    process = start(tmp_path, *TABLE, "--trainer.callbacks+", progress)
    assert process.stdout.readline().startswith("epoch 0,")  # training is under way, 59 epochs to go
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143 and err == "", err[-2000:]
    summary = json.loads((tmp_path / "lightning_logs" / "version_0" / "summary.json").read_text())
    (checkpoint,) = checkpoints(tmp_path)
    step = torch.load(checkpoint, weights_only=True)["global_step"]
    assert summary["interrupted"] is True and 0 < summary["global_step"] == step < 60 * 32
    (note,) = [line for line in out.splitlines() if line.startswith("interrupted at step")]
    command = shlex.split(note.split("resume with: ")[1])
    # The interpreter this run used (a bare `python` may not be the virtual environment's), and this program.
    assert command[:3] == [sys.executable, str(ROOT / "train.py"), "fit"] and "--ckpt_path" in command


class SignalAtEpoch(L.Callback):
    """Sends this process a signal at the end of an epoch, as a person pressing Ctrl-C mid-run would."""

    def __init__(self, signum: int = int(signal.SIGINT), epoch: int = 3) -> None:
        self.signum, self.epoch = signum, epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), self.signum)


def test_ctrl_c_writes_a_resumable_checkpoint_and_a_marked_summary(tmp_path, capsys):
    """SIGINT mid-run, in this process (the real-process path is the SIGTERM test's): exit 130, last.ckpt at the
    step reached, summary.json marked interrupted; resuming with the printed command ends where the uninterrupted
    run ends, exponential schedule and averaging too."""
    reference = finish_in_process(tmp_path / "uninterrupted", *TABLE)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        fit(tmp_path / "interrupted", *RUN, *TABLE, "--trainer.callbacks+", "tests.test_fault_tolerance.SignalAtEpoch")
    assert exit_.value.code == 130
    (run,) = (tmp_path / "interrupted" / "lightning_logs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert summary["interrupted"] is True and 4 * 32 <= summary["global_step"] == step < reference["global_step"]
    (note,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("interrupted at step")]
    command = shlex.split(note.split("resume with: ")[1])
    assert command[2] == "fit" and command[3] == "--config" and command[5] == "--ckpt_path"
    resumed = finish_in_process(tmp_path / "resumed", *command[3:])
    assert resumed["global_step"] == reference["global_step"]
    for name in ("w", "b", "w_average", "b_average"):
        assert torch.equal(resumed["state_dict"][name], reference["state_dict"][name]), name


def kill_one_rank(cwd: Path, rank: int) -> None:
    """Starts (or resumes) a 2-process DDP run, SIGKILLs one rank mid-run, checks the other stops in one line."""
    before = saved_step(cwd)
    process = start(cwd, *DDP, *resume_args(cwd))  # rank 0 is this process; it launches rank 1 as its child
    wait_for(lambda: saved_step(cwd) > before + 20)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    (rank_1,) = [int(pid) for pid in children if "train.py" in Path(f"/proc/{pid}/cmdline").read_text()]
    killed = rank_1 if rank == 1 else process.pid
    os.kill(killed, signal.SIGKILL)
    if rank == 1:  # the survivor is rank 0, whose stderr we read
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            kill_group(process)
            pytest.fail("rank 0 hung on a collective after rank 1 died")
        assert process.returncode != 0 and "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1].startswith("error: "), stderr[-2000:]
    else:
        wait_for(lambda: not Path(f"/proc/{rank_1}").exists() or _is_zombie(rank_1), timeout=60)
        kill_group(process)


def _is_zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.mark.longest
def test_ddp_learns_what_one_process_learns_and_resumes_bit_identical_after_a_killed_rank(tmp_path, monkeypatch):
    """2 CPU processes walk the same global batches as one, each taking a slice, so they learn the same weights
    (to float32 summation order). Killing either rank stops the other in one line (or at once), and the run
    resumed from last.ckpt ends bit-identical to the uninterrupted 2-process run.

    The uninterrupted run forks its 2 processes from this one (Lightning's ddp_fork: the same collectives and
    slices as ddp, without the two interpreter starts, ~8 s each here, that each real run below pays)."""
    monkeypatch.delenv("MASTER_PORT", raising=False)  # absent again after the test, whatever Lightning sets
    reference = finish_in_process(tmp_path / "uninterrupted", *DDP, "--trainer.strategy", "ddp_fork")
    os.environ.pop("MASTER_PORT", None)  # the port the fork launcher chose: each real launch below chooses its own
    single = finish_in_process(tmp_path / "single", *DDP[2:])
    assert reference["global_step"] == single["global_step"] == 4 * 34  # ceil(500 / 15) steps an epoch
    for name in ("w", "b"):
        torch.testing.assert_close(reference["state_dict"][name], single["state_dict"][name], rtol=0, atol=1e-5)
    cwd = tmp_path / "killed"
    kill_one_rank(cwd, rank=1)
    kill_one_rank(cwd, rank=0)
    assert_same_bits(finish(cwd, *DDP), reference)  # quiet: finish checks stderr is empty
    assert len(run_directories(cwd)) == 3  # one a launch: rank 1 wrote into rank 0's run directory each time
