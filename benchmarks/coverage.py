"""How often the "95%" intervals cover the planted truth, beside statsmodels' on the same datasets.

    python -m benchmarks.coverage                    # coverage.md and coverage-wide.md, a setting a core
    python -m benchmarks.coverage --part wide        # only the small wide designs (coverage-wide.md)
    python -m benchmarks.coverage --rank-cutoff normal   # the median's rank test with the normal cutoff, mae only
    python -m benchmarks.coverage --part wide --huber-refits --designs 16x5 32x7   # Huber's refitted test

``planted``: data as the tutorial makes it (X ~ N(0, 1), 4 columns, w = [8.1, 2, 2, 4], b = 1.1), with normal
or t(3) noise of scale 1, at n = 30, 200 and 2,000; 1,000 datasets a setting, so 5,000 intervals (5 parameters
each).
``wide``: the spreadsheet-sized studies where small-sample corrections matter: n = 16, 32 and 64 rows with one
parameter per 3 to 10 rows; columns correlated 0.5 with one of them log-normal (skewed, with a few high-leverage
rows); weights drawn N(0, 1) per dataset, normal or t(3) noise; 400 datasets a setting.
lit_linreg's intervals are its defaults (robust covariances, Student's t); statsmodels' are its defaults too:
OLS (classical), QuantReg (its "robust" sparsity estimate), RLM (Huber's T with a MAD scale and H1).
``--rank-cutoff normal`` measures the rank-score test (the median's intervals below 1,001 rows,
``lit_linreg.stats.rank_test``) with the normal cutoff, the default before the Monte Carlo one, on the same
datasets, for mae only, into ``coverage-normal-cutoff.md`` and ``coverage-wide-normal-cutoff.md``.
``--huber-refits`` measures Huber's intervals from the refitted wild bootstrap test (``analyse(...,
refitted_bootstrap=True)``, ``lit_linreg.stats.huber_bootstrap``), huber only, into ``coverage-wide-huber-refits.md``
(on tables of more than 5 rows a parameter they are the default's). ``--designs`` keeps some of the wide designs,
in a file named after them (``coverage-wide-16x5-32x7.md``). Settings are measured side by side, one a process
(``--jobs``, default: one a core), the costliest first so that the last to finish is a short one.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import statsmodels.api as sm
import torch

from benchmarks.common import ROOT, machine, markdown, write_result
from lit_linreg.stats.analysis import analyse
from lit_linreg.stats.huber_bootstrap import huber_bootstrap_wanted, huber_refits_affordable

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


LOSSES = ("mse", "mae", "huber")


def ours(
    x: np.ndarray, y: np.ndarray, loss: str, monte_carlo_cutoff: bool = True, refitted: bool = False
) -> np.ndarray:
    names = NAMES if x.shape[1] == len(NAMES) else [f"x{j}" for j in range(x.shape[1])]
    a = analyse(
        torch.tensor(x),
        torch.tensor(y),
        names,
        loss,
        monte_carlo_cutoff=monte_carlo_cutoff,
        refitted_bootstrap=refitted,
    )
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


SETTINGS = {
    "planted": [(n, noise) for n in (30, 200, 2000) for noise in ("normal", "t3")],
    "wide": [(n, p, noise) for n, p in WIDE for noise in ("normal", "t3")],
}


def measure(
    setting: tuple, datasets: int, losses: tuple[str, ...], monte_carlo_cutoff: bool, refitted: bool = False
) -> list[list]:
    """The table's rows for one setting of ``SETTINGS`` (n and noise, planted; n, parameters and noise, wide),
    its datasets drawn from a seed of its own."""
    if len(setting) == 2:
        n, noise = setting
        rng, label = np.random.default_rng(n + (noise == "t3")), f"n = {n}, {noise} noise"

        def draw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return *dataset(rng, n, noise), TRUTH
    else:
        n, p, noise = setting
        rng, label = np.random.default_rng(100 * n + p + (noise == "t3")), f"n = {n}, {p} parameters, {noise} noise"

        def draw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return wide_dataset(rng, n, p, noise)

    hits = {loss: [[], []] for loss in losses}
    for _ in range(datasets):
        x, y, truth = draw()
        for loss, (mine, theirs) in hits.items():
            for store, intervals in (
                (mine, ours(x, y, loss, monte_carlo_cutoff, refitted)),
                (theirs, statsmodels_intervals(x, y, loss)),
            ):
                store.extend((intervals[:, 0] <= truth) & (truth <= intervals[:, 1]))
    return _rows(label, hits)


def run_part(
    part: str,
    datasets: int,
    losses: tuple[str, ...],
    monte_carlo_cutoff: bool,
    jobs: int,
    refitted: bool = False,
    designs: list[tuple[int, int]] | None = None,
) -> list[list]:
    """Every setting of ``part`` (of ``designs`` only, where given), ``jobs`` at a time (each setting's datasets
    come from its own seed)."""
    one = functools.partial(
        measure, datasets=datasets, losses=losses, monte_carlo_cutoff=monte_carlo_cutoff, refitted=refitted
    )
    settings = [s for s in SETTINGS[part] if designs is None or len(s) == 2 or s[:2] in designs]
    if jobs == 1:
        return [row for setting in settings for row in one(setting)]
    torch.set_num_threads(1)  # one core a process
    # The costliest settings first, each handed to the next free process; the rows are put back in the table's order.
    order = sorted(range(len(settings)), key=lambda i: -_cost(settings[i], refitted and "huber" in losses))
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        measured = dict(zip(order, pool.imap(one, [settings[i] for i in order], chunksize=1), strict=True))
    return [row for i in range(len(settings)) for row in measured[i]]


def _cost(setting: tuple, refits: bool) -> int:
    """About how a setting's time grows: as n·p³ where Huber's draws are refitted (``refits``, where the test is
    wanted and within the refits' budget), else as n·p (n alone, planted)."""
    if len(setting) == 2:
        return setting[0]
    n, p, _ = setting
    refitted = refits and huber_bootstrap_wanted(n, p) and huber_refits_affordable(n, p, alpha=0.05)
    return n * p**3 if refitted else n * p


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
    parser.add_argument("--rank-cutoff", choices=["normal", "monte-carlo"], default="monte-carlo")
    parser.add_argument("--huber-refits", action="store_true", help="Huber's refitted wild bootstrap test, huber only")
    parser.add_argument("--designs", nargs="+", default=None, help="wide designs to keep, as 32x7")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="settings measured side by side")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # QuantReg's iteration warnings on some datasets
    normal_cutoff = args.rank_cutoff == "normal"
    losses = ("mae",) if normal_cutoff else ("huber",) if args.huber_refits else LOSSES
    designs = None if args.designs is None else [_design(parser, d) for d in args.designs]
    variant = "-normal-cutoff" if normal_cutoff else "-huber-refits" if args.huber_refits else ""
    if designs is not None:  # a part of the wide table: a file of its own, never the whole table's
        variant += "-" + "-".join(args.designs)
    header = ["setting", "loss", "lit_linreg", "statsmodels (its default)", "intervals"]
    for part, name, default in (("planted", "coverage", 1000), ("wide", "coverage-wide", 400)):
        if args.part not in (part, "all"):
            continue
        started = time.perf_counter()
        datasets = args.datasets or default
        rows = run_part(part, datasets, losses, not normal_cutoff, args.jobs, args.huber_refits, designs)
        what = "nominal 95% intervals"
        if normal_cutoff:
            what = "intervals from the rank-score test's normal cutoff (mae)"
        elif args.huber_refits:
            what = "Huber's intervals from the refitted wild bootstrap test (at most 5 rows a parameter)"
        command = f"python -m benchmarks.coverage {' '.join(_arguments())}" if variant else "make bench-coverage"
        side_by_side = f", {args.jobs} settings at a time" if args.jobs > 1 else ""
        note = (
            f"Share of {what} that contain the planted value; {datasets} datasets a setting. "
            f"Measured on {machine()} in {time.perf_counter() - started:.0f} s{side_by_side} (`{command}`)."
        )
        write_result(args.out, name + variant, f"{note}\n\n{markdown(header, rows, 'llrrr')}")


def _arguments() -> list[str]:
    """The command line's arguments but ``--out`` (where the table went, which changes nothing in it)."""
    kept, skip = [], False
    for argument in sys.argv[1:]:
        if not skip and not argument.startswith("--out"):
            kept.append(argument)
        skip = argument == "--out"
    return kept


def _design(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """``32x7`` as (32, 7), one of ``WIDE``; anything else ends the run in one line."""
    n, _, p = text.partition("x")
    if not (n.isdigit() and p.isdigit()) or (int(n), int(p)) not in WIDE:
        parser.error(f"--designs {text}: the wide designs are {' '.join(f'{n}x{p}' for n, p in WIDE)}")
    return int(n), int(p)


if __name__ == "__main__":
    main()
