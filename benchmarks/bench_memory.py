"""Peak memory of training on 10M rows x 4 features (200 MB of data) against an idle Lightning process.

    python benchmarks/bench_memory.py

Each run is a fresh process (peak resident memory, VmHWM, only grows): an "idle" one fits 1,000 rows; the
big one fits 10M rows for 2 epochs at batch 16384. The target is big <= idle + 1.5 x data.
"""

from __future__ import annotations

import re
import subprocess
import sys

RUN = """
import re, sys
from lit_linreg.cli import cli_main
cli_main(["fit", "--data.n_samples", "{n}", "--trainer.max_epochs", "2", "--data.batch_size", "16384",
          "--trainer.enable_progress_bar", "false", "--report.bootstrap", "0", "--report.plot", "false",
          "--trainer.logger", "false", "--trainer.default_root_dir", "/tmp/lit_linreg_bench_memory"])
print("PEAK", re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
"""


def peak_mb(n_rows: int) -> float:
    out = subprocess.run([sys.executable, "-c", RUN.format(n=n_rows)], capture_output=True, text=True, check=True)
    return int(re.search(r"PEAK (\d+)", out.stdout).group(1)) / 1024


def main() -> None:
    data_mb = 10_000_000 * (4 + 1) * 4 / 2**20  # float32 features and target
    idle, big = peak_mb(1_000), peak_mb(10_000_000)
    print(f"idle Lightning process: {idle:.0f} MB peak")
    print(f"10M x 4 ({data_mb:.0f} MB of data): {big:.0f} MB peak = idle + {(big - idle) / data_mb:.2f} x data")


if __name__ == "__main__":
    main()
