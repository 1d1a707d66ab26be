"""How often the "95%" intervals cover the planted truth, beside statsmodels' on the same datasets.

    python -m benchmarks.coverage                    # writes benchmarks/results/coverage.md (~2 minutes)

Planted data as the tutorial makes it (X ~ N(0, 1), 4 columns, w = [8.1, 2, 2, 4], b = 1.1), with normal or
t(3) noise of scale 1, at n = 30, 200 and 2,000; 1,000 datasets a setting, so 5,000 intervals (5 parameters
each).
lit_linreg's intervals are its defaults (robust covariances, Student's t); statsmodels' are its defaults too:
OLS (classical), QuantReg (its "robust" sparsity estimate), RLM (Huber's T with a MAD scale and H1).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import statsmodels.api as sm
import torch

from benchmarks.common import ROOT, machine, markdown, write_result
from lit_linreg.stats.analysis import analyse

TRUTH = np.array([1.1, 8.1, 2.0, 2.0, 4.0])  # the constant first, as statsmodels orders them
NAMES = ["appearance", "personality", "wealth", "inner_quality"]


def dataset(rng: np.random.Generator, n: int, noise: str) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4))
    e = rng.normal(size=n) if noise == "normal" else rng.standard_t(3, n)
    return x, x @ TRUTH[1:] + TRUTH[0] + e


def ours(x: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    a = analyse(torch.tensor(x), torch.tensor(y), NAMES, loss)
    return np.array([[c.low, c.high] for c in [a.bias, *a.weights]])


def statsmodels_intervals(x: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    design = sm.add_constant(x)
    if loss == "mse":
        fit = sm.OLS(y, design).fit()
    elif loss == "mae":
        fit = sm.QuantReg(y, design).fit(q=0.5)
    else:
        fit = sm.RLM(y, design, M=sm.robust.norms.HuberT()).fit()
    return np.asarray(fit.conf_int(0.05))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # QuantReg's iteration warnings on some datasets
    rows = []
    started = time.perf_counter()
    for n in (30, 200, 2000):
        for noise in ("normal", "t3"):
            rng = np.random.default_rng(n + (noise == "t3"))
            hits = {loss: [[], []] for loss in ("mse", "mae", "huber")}
            for _ in range(args.datasets):
                x, y = dataset(rng, n, noise)
                for loss, (mine, theirs) in hits.items():
                    for store, intervals in ((mine, ours(x, y, loss)), (theirs, statsmodels_intervals(x, y, loss))):
                        store.extend((intervals[:, 0] <= TRUTH) & (TRUTH <= intervals[:, 1]))
            for loss, (mine, theirs) in hits.items():
                rows.append([f"n = {n}, {noise} noise", loss, f"{np.mean(mine):.1%}", f"{np.mean(theirs):.1%}",
                             f"{len(mine)}"])  # fmt: skip
                print(rows[-1], flush=True)
    header = ["setting", "loss", "lit_linreg", "statsmodels (its default)", "intervals"]
    note = (
        f"Share of nominal 95% intervals that contain the planted value; {args.datasets} datasets a setting. "
        f"Measured on {machine()} in {time.perf_counter() - started:.0f} s (`make bench-coverage`)."
    )
    write_result(args.out, "coverage", f"{note}\n\n{markdown(header, rows, 'llrrr')}")


if __name__ == "__main__":
    main()
