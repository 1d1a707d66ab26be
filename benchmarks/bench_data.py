"""Real tables at real sizes: reading time and peak memory, end-to-end fits, and a table bigger than its memory.

    python -m benchmarks.bench_data                 # writes benchmarks/results/data.md (~5 minutes, 9 GB of disk)
    python -m benchmarks.bench_data --skip-big      # without the 4 GB table

Each measurement runs in a fresh process; peak memory is its VmHWM, against an idle process that imported the
same modules. Cases:

- a 1,000,000 x 10 CSV (plus the target): read into the data module (pyarrow, float64), then as Parquet;
- ``train.py fit --config configs/csv.yaml`` on that CSV, end to end (imports included, the report off);
- the planted data at 10,000,000 x 4 (float32), 2 epochs at batch 16384, the report off;
- a 4.6 GB float32 Parquet table (~98M rows x 11) trained one epoch from its memory-mapped cache
  (``--data.memory_map true --data.shuffle_block_rows 4096``): the process's anonymous memory (RssAnon).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, markdown, write_result

PROBE = """
import re, sys, time
from pathlib import Path
def status(key): return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024
import torch, lightning, pyarrow, pyarrow.csv, pyarrow.parquet, pyarrow.compute
from lit_linreg.cli import cli_main
from lit_linreg.data import LinRegDataModule
started = time.perf_counter()
{body}
print("SECONDS", time.perf_counter() - started)
print("PEAK_MB", status("VmHWM"), "ANON_MB", status("RssAnon"))
"""


def probe(body: str, cwd: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return {k: float(v) for k, v in re.findall(r"(SECONDS|PEAK_MB|ANON_MB) ([\d.]+)", result.stdout)}


def write_table(path_csv: Path, path_parquet: Path, rows: int = 1_000_000, columns: int = 10) -> float:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)) * np.logspace(-3, 4, columns)
    y = x @ (1 / np.logspace(-3, 4, columns)) + rng.standard_t(3, rows)
    table = pa.table({**{f"c{j}": x[:, j] for j in range(columns)}, "y": y})
    pa_csv.write_csv(table, path_csv)
    pq.write_table(table, path_parquet)
    return (rows * (columns + 1) * 8) / 2**20  # float64 MB


def write_big_parquet(path: Path, gigabytes: float = 4.0, columns: int = 10) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = int(gigabytes * 2**30 / ((columns + 1) * 4))
    rng = np.random.default_rng(1)
    weights = np.linspace(-2, 2, columns).astype(np.float32)
    schema = pa.schema([*(pa.field(f"c{j}", pa.float32()) for j in range(columns)), pa.field("y", pa.float32())])
    with pq.ParquetWriter(path, schema, compression="none") as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            x = rng.standard_normal((n, columns), dtype=np.float32)
            y = x @ weights + 3 + rng.standard_normal(n, dtype=np.float32)
            writer.write_table(pa.table({**{f"c{j}": x[:, j] for j in range(columns)}, "y": y}, schema=schema))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lit_linreg_data"))
    parser.add_argument("--skip-big", action="store_true")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    csv, parquet = work / "table.csv", work / "table.parquet"
    data_mb = write_table(csv, parquet)
    idle = probe("pass", work)
    rows = []

    def add(case: str, measured: dict, data: float, baseline: dict, note: str = "") -> None:
        extra = f"{note} + {(measured['PEAK_MB'] - baseline['PEAK_MB']) / data:.2f}x the data"
        rows.append([case, f"{measured['SECONDS']:.2f}", f"{measured['PEAK_MB']:.0f}", extra])
        print(rows[-1], flush=True)

    size = csv.stat().st_size / 2**20
    read = "d = LinRegDataModule(path='{}', target='y'); d.setup('fit')"
    add(f"read a 1M x 10 CSV ({size:.0f} MB) into float64", probe(read.format(csv), work), data_mb, idle, "idle")
    add("read the same table as Parquet", probe(read.format(parquet), work), data_mb, idle, "idle")
    fit = ["fit", "--config", str(ROOT / "configs" / "csv.yaml"), "--data.path", str(csv), "--data.target", "y"]
    fit += ["--report.optimum", "false", "--report.plot", "false", "--trainer.default_root_dir", str(work)]
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "train.py"), *fit], cwd=work, check=True, capture_output=True)
    rows.append(["`train.py fit` on that CSV with the table defaults, end to end (imports included, report off)",
                 f"{time.perf_counter() - started:.2f}", "", ""])  # fmt: skip
    print(rows[-1], flush=True)
    planted = ("cli_main(['fit', '--data.n_samples', '{}', '--trainer.max_epochs', '2', '--data.batch_size', "
               "'16384', '--report.optimum', 'false', '--report.plot', 'false', '--trainer.logger', 'false', "
               f"'--trainer.default_root_dir', '{work}'])")  # fmt: skip
    idle_fit = probe(planted.format(1000), work)
    add("planted 10M x 4 (float32), 2 epochs at batch 16384", probe(planted.format(10_000_000), work),
        10_000_000 * 5 * 4 / 2**20, idle_fit, "idle fit (1,000 rows)")  # fmt: skip
    if not args.skip_big:
        big = work / "big.parquet"
        n = write_big_parquet(big)
        gigabytes = big.stat().st_size / 2**30
        for stale in work.glob(".big.parquet.*"):
            stale.unlink()
        for label in ("writes its cache, then trains", "trains from its cache"):
            body = (f"cli_main(['fit', '--config', '{ROOT / 'configs' / 'csv.yaml'}', '--data.path', '{big}', "
                    "'--data.target', 'y', '--data.memory_map', 'true', '--data.shuffle_block_rows', '4096', "
                    "'--trainer.max_epochs', '1', '--report.optimum', 'false', '--report.plot', 'false', "
                    f"'--trainer.default_root_dir', '{work}'])")  # fmt: skip
            measured = probe(body, work)
            rows.append([f"{gigabytes:.1f} GB Parquet ({n:,} rows x 11 float32), memory-mapped, 1 epoch: {label}",
                         f"{measured['SECONDS']:.1f}", f"{measured['PEAK_MB']:.0f}",
                         f"RssAnon {measured['ANON_MB']:.0f} MB (file pages are not anonymous)"])  # fmt: skip
            print(rows[-1], flush=True)
    header = ["case", "seconds", "peak MB (VmHWM)", "memory"]
    note = f"Idle process (same imports): {idle['PEAK_MB']:.0f} MB peak. Measured on {machine()} (`make bench-data`)."
    write_result(args.out, "data", f"{note}\n\n{markdown(header, rows, 'lrrl')}")


if __name__ == "__main__":
    main()
