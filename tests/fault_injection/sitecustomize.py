"""Loaded by the fault-injection tests' training processes (PYTHONPATH) to hold a checkpoint write open.

With LIT_LINREG_HANG_IN_FSYNC=1, the first fsync never returns. Only checkpoint writes fsync, between writing
``.last.ckpt.partial`` and renaming it over ``last.ckpt``, so a test that sees the partial file can SIGKILL the
process in the middle of a checkpoint write, every time, however fast or slow the machine.
"""

import os
import threading

if os.environ.get("LIT_LINREG_HANG_IN_FSYNC") == "1":
    _fsync = os.fsync

    def _hanging_fsync(fd: int) -> None:
        _fsync(fd)
        threading.Event().wait()  # until the test kills the process

    os.fsync = _hanging_fsync
