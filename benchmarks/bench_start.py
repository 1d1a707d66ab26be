"""Whole-process times: what a user waits for, from the shell, start-up included.

    python -m benchmarks.bench_start [--repeats 3] [--out benchmarks/results]

Each command runs as its own process (the best of ``--repeats``, alternating the commands so that a slow moment of
the machine falls on all of them): importing the package, ``--help``, an argument error, and the same job done
three ways on the shipped diabetes table (read the CSV, fit least squares with HC3 standard errors, print the
table): ``train.py fit``, ``lit_linreg.fit`` from a script, and statsmodels. Writes ``start.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, markdown, write_result

ROOT = Path(__file__).resolve().parents[1]
DIABETES = ROOT / "examples" / "diabetes.csv"
STATSMODELS = f"""
import pandas as pd, statsmodels.formula.api as smf
table = pd.read_csv({str(DIABETES)!r})
formula = "progression ~ " + " + ".join(c for c in table.columns if c != "progression")
print(smf.ols(formula, table).fit(cov_type="HC3").summary())
"""
LIT_LINREG = f"""
import pandas as pd, lit_linreg
print(lit_linreg.fit(pd.read_csv({str(DIABETES)!r}), "progression", plot=False).summary())
"""


def commands(workdir: str) -> dict[str, list[str]]:
    python, train = sys.executable, str(ROOT / "train.py")
    fit = [python, train, "fit", "--config", str(ROOT / "configs" / "csv.yaml"), "--report.plot", "false"]
    fit += [
        "--data.path",
        str(DIABETES),
        "--trainer.default_root_dir",
        workdir,
        "--trainer.enable_progress_bar",
        "false",
    ]
    return {
        "`import lit_linreg`": [python, "-c", "import lit_linreg"],
        "`train.py fit --help`": [python, train, "fit", "--help"],
        "`train.py fit --model.lr 0` (an argument error)": [python, train, "fit", "--model.lr", "0"],
        "`train.py fit --config configs/csv.yaml` (diabetes, least squares)": fit,
        "a script: `lit_linreg.fit(pd.read_csv(...), ...)`, print `summary()`": [python, "-c", LIT_LINREG],
        "a script: statsmodels `smf.ols(...).fit(cov_type='HC3')`, print `summary()`": [python, "-c", STATSMODELS],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        runs = commands(workdir)
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, command in runs.items():
                started = time.perf_counter()
                done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
                if (done.returncode != 0) != ("error" in name):  # a failure that is not the point would time nothing
                    raise SystemExit(f"{name} exited with {done.returncode}: {done.stderr[-500:]}")
                best[name] = min(best[name], time.perf_counter() - started)
    table = markdown(["command (a new process each time)", "seconds"], [[n, f"{s:.2f}"] for n, s in best.items()])
    text = f"Best of {args.repeats}, alternating; measured on {machine()} (`make bench-start`).\n\n{table}"
    print(text)
    write_result(args.out, "start", text)


if __name__ == "__main__":
    main()
