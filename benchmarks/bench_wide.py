"""A wide table: 3,000 rows x 2,000 columns by least squares, end to end, beside statsmodels doing the same job.

    python -m benchmarks.bench_wide          # writes benchmarks/results/wide.md (~2 minutes)

Both sides are whole processes, imports included, on the same CSV (written once, float64 text):

- lit_linreg: ``train.py fit --config configs/csv.yaml --model.loss mse --report.plot false`` (SGD with the table
  defaults, then the exact least-squares optimum, HC2 standard errors (Bell-McCaffrey's degrees of freedom are
  past their budget at this size), the design check, the report);
- statsmodels: ``pandas.read_csv``, ``sm.OLS(y, add_constant(X)).fit(cov_type="HC2")`` and ``summary()``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, markdown, write_result

STATSMODELS = """
import sys
import pandas as pd
import statsmodels.api as sm
frame = pd.read_csv(sys.argv[1])
result = sm.OLS(frame["y"], sm.add_constant(frame.drop(columns="y"))).fit(cov_type="HC2")
print(result.summary())
"""


def write_wide(path: Path, rows: int, columns: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns))
    y = x @ rng.normal(size=columns) + rng.standard_t(3, rows)
    pa_csv.write_csv(pa.table({**{f"c{j}": x[:, j] for j in range(columns)}, "y": y}), path)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--columns", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = work / "wide.csv"
        write_wide(table, args.rows, args.columns)
        ours = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "configs" / "csv.yaml")]
        ours += ["--data.path", str(table), "--data.target", "y", "--model.loss", "mse", "--report.plot", "false"]
        seconds = {
            "statsmodels (pandas.read_csv, OLS with HC2, summary)": timed(
                [sys.executable, "-c", STATSMODELS, str(table)], work
            ),
            "lit_linreg (train.py fit, table defaults, mse)": timed(ours, work),
        }
    base = next(iter(seconds.values()))
    rows = [[name, f"{value:.1f}", f"{value / base:.2f}x"] for name, value in seconds.items()]
    text = (
        f"{args.rows:,} rows x {args.columns:,} columns, least squares with HC2 errors, whole processes (imports "
        f"included). Measured on {machine()} (`python -m benchmarks.bench_wide`).\n\n"
        + markdown(["end to end", "seconds", "vs statsmodels"], rows)
    )
    print(text)
    write_result(args.out, "wide", text)


if __name__ == "__main__":
    main()
