"""Loaded by the fault-injection tests' training processes (PYTHONPATH) to widen the checkpoint-write window.

With LIT_LINREG_SLOW_FSYNC=<seconds>, every fsync sleeps that long after flushing. Only checkpoint writes
fsync, between writing ``.last.ckpt.partial`` and renaming it over ``last.ckpt``, so a test that sees the
partial file can SIGKILL the process in the middle of a checkpoint write, every time.
"""

import os
import time

if delay := float(os.environ.get("LIT_LINREG_SLOW_FSYNC", "0")):
    _fsync = os.fsync

    def _slow_fsync(fd: int) -> None:
        _fsync(fd)
        time.sleep(delay)

    os.fsync = _slow_fsync
