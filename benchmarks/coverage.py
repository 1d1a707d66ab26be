"""How often the "95%" intervals cover the planted truth, beside statsmodels' on the same datasets.

    python -m benchmarks.coverage                    # coverage.md and coverage-wide.md (~90 minutes on one core)
    python -m benchmarks.coverage --part wide        # only the small wide designs (coverage-wide.md)

``planted``: data as the tutorial makes it (X ~ N(0, 1), 4 columns, w = [8.1, 2, 2, 4], b = 1.1), with normal
or t(3) noise of scale 1, at n = 30, 200 and 2,000; 1,000 datasets a setting, so 5,000 intervals (5 parameters
each).
``wide``: the spreadsheet-sized studies where small-sample corrections matter: n = 16, 32 and 64 rows with one
parameter per 3 to 10 rows; columns correlated 0.5 with one of them log-normal (skewed, with a few high-leverage
rows); weights drawn N(0, 1) per dataset, normal or t(3) noise; 400 datasets a setting.
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


WIDE = [(16, 3), (16, 5), (32, 4), (32, 7), (32, 11), (64, 7), (64, 13), (64, 21)]  # (n, parameters)


def wide_dataset(rng: np.random.Generator, n: int, p: int, noise: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, truth with the constant first): p - 1 columns correlated 0.5, the last one exp() of its normal."""
    k = p - 1
    x = np.sqrt(0.5) * rng.normal(size=(n, k)) + np.sqrt(0.5) * rng.normal(size=(n, 1))
    x[:, -1] = np.exp(x[:, -1])
    w = rng.normal(size=k)
    e = rng.normal(size=n) if noise == "normal" else rng.standard_t(3, n)
    return x, x @ w + 1.0 + e, np.r_[1.0, w]  # symmetric noise: its mean and median are 0


def ours(x: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    names = NAMES if x.shape[1] == len(NAMES) else [f"x{j}" for j in range(x.shape[1])]
    a = analyse(torch.tensor(x), torch.tensor(y), names, loss)
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


def planted(datasets: int) -> list[list]:
    rows = []
    for n in (30, 200, 2000):
        for noise in ("normal", "t3"):
            rng = np.random.default_rng(n + (noise == "t3"))
            hits = {loss: [[], []] for loss in ("mse", "mae", "huber")}
            for _ in range(datasets):
                x, y = dataset(rng, n, noise)
                for loss, (mine, theirs) in hits.items():
                    for store, intervals in ((mine, ours(x, y, loss)), (theirs, statsmodels_intervals(x, y, loss))):
                        store.extend((intervals[:, 0] <= TRUTH) & (TRUTH <= intervals[:, 1]))
            rows += _rows(f"n = {n}, {noise} noise", hits)
    return rows


def wide(datasets: int) -> list[list]:
    rows = []
    for n, p in WIDE:
        for noise in ("normal", "t3"):
            rng = np.random.default_rng(100 * n + p + (noise == "t3"))
            hits = {loss: [[], []] for loss in ("mse", "mae", "huber")}
            for _ in range(datasets):
                x, y, truth = wide_dataset(rng, n, p, noise)
                for loss, (mine, theirs) in hits.items():
                    for store, intervals in ((mine, ours(x, y, loss)), (theirs, statsmodels_intervals(x, y, loss))):
                        store.extend((intervals[:, 0] <= truth) & (truth <= intervals[:, 1]))
            rows += _rows(f"n = {n}, {p} parameters, {noise} noise", hits)
    return rows


def _rows(setting: str, hits: dict) -> list[list]:
    rows = []
    for loss, (mine, theirs) in hits.items():
        rows.append([setting, loss, f"{np.mean(mine):.1%}", f"{np.mean(theirs):.1%}", f"{len(mine)}"])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["planted", "wide", "all"], default="all")
    parser.add_argument("--datasets", type=int, default=None, help="a setting (default: 1000 planted, 400 wide)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # QuantReg's iteration warnings on some datasets
    header = ["setting", "loss", "lit_linreg", "statsmodels (its default)", "intervals"]
    for part, name, run, default in (("planted", "coverage", planted, 1000), ("wide", "coverage-wide", wide, 400)):
        if args.part not in (part, "all"):
            continue
        started = time.perf_counter()
        datasets = args.datasets or default
        rows = run(datasets)
        note = (
            f"Share of nominal 95% intervals that contain the planted value; {datasets} datasets a setting. "
            f"Measured on {machine()} in {time.perf_counter() - started:.0f} s (`make bench-coverage`)."
        )
        write_result(args.out, name, f"{note}\n\n{markdown(header, rows, 'llrrr')}")


if __name__ == "__main__":
    main()
