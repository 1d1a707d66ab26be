"""How often the "95%" intervals cover the planted truth, beside statsmodels' on the same datasets.

    python -m benchmarks.coverage                    # coverage.md and coverage-wide.md, a setting a core
    python -m benchmarks.coverage --part wide        # only the small wide designs (coverage-wide.md)
    python -m benchmarks.coverage --rank-cutoff normal   # the median's rank test with the normal cutoff, mae only
    python -m benchmarks.coverage --part wide --huber-bell-mccaffrey --designs 16x5   # Huber's t, not refitted
    python -m benchmarks.coverage --part wide --parts benchmarks/coverage-parts     # over several sittings

``planted``: data as the tutorial makes it (X ~ N(0, 1), 4 columns, w = [8.1, 2, 2, 4], b = 1.1), with normal
or t(3) noise of scale 1, at n = 30, 200 and 2,000; 1,000 datasets a setting, so 5,000 intervals (5 parameters
each).
``wide``: the spreadsheet-sized studies where small-sample corrections matter: n = 16, 32 and 64 rows with one
parameter per 3 to 10 rows; columns correlated 0.5 with one of them log-normal (skewed, with a few high-leverage
rows); weights drawn N(0, 1) per dataset, normal or t(3) noise; 400 datasets a setting.
lit_linreg's intervals are its defaults (robust covariances, and each loss's default intervals, which its report
names); statsmodels' are its defaults too: OLS (classical), QuantReg (its "robust" sparsity estimate), RLM (Huber's
T with a MAD scale and H1).
``--rank-cutoff normal`` measures the rank-score test (the median's intervals below 1,001 rows,
``lit_linreg.stats.rank_test``) with the normal cutoff, the default before the Monte Carlo one, on the same
datasets, for mae only, into ``coverage-normal-cutoff.md`` and ``coverage-wide-normal-cutoff.md``.
``--huber-bell-mccaffrey`` measures Huber's intervals from the sandwich's t on Bell and McCaffrey's degrees of
freedom (``analyse(..., refitted_bootstrap=False)``), the default before the refitted wild bootstrap test
(``lit_linreg.stats.huber_bootstrap``), huber only, into ``coverage-wide-huber-bell-mccaffrey.md`` (on tables of
more than 5 rows a parameter, or past the refits' budget, they are the default's). ``--designs`` keeps some of the
wide designs, in a file named after them (``coverage-wide-16x5-32x7.md``). Settings are measured side by side, one
a process (``--jobs``, default: one a core), the costliest first so that the last to finish is a short one.
``--parts`` keeps each loss's count of a setting in a file there as it grows, and a later run goes on from it
(``Tally``): the wide table, Huber's draws refitted, takes about 6.3 hours of two cores.
"""

from __future__ import annotations

import argparse
import functools
import json
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


def ours(x: np.ndarray, y: np.ndarray, loss: str, monte_carlo_cutoff: bool = True, refitted: bool = True) -> np.ndarray:
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
    setting: tuple,
    datasets: int,
    losses: tuple[str, ...],
    monte_carlo_cutoff: bool,
    refitted: bool = True,
    parts: Path | None = None,
) -> tuple[list[list], float, int]:
    """(the table's rows, the seconds its analyses took, how many datasets' counts were read back) for one
    setting of ``SETTINGS`` (n and noise, planted; n, parameters and noise, wide), its datasets drawn from a seed
    of its own; with ``parts``, each loss's tally is kept there as it grows and read back rather than measured
    again (``Tally``)."""
    label, data = _datasets(setting, datasets)
    rows, seconds, carried = [], 0.0, 0
    for loss in losses:
        method = _method(setting, loss, monte_carlo_cutoff, refitted)
        path = None if parts is None else parts / f"{_slug(setting)}-{method}-{datasets}.json"
        tally = Tally.resumed(path, data, loss, monte_carlo_cutoff, refitted)
        carried += tally.done
        for i in range(tally.done, datasets):
            tally.add(i, data[i], loss, monte_carlo_cutoff, refitted)
            if path is not None and (tally.done % SAVE_EVERY == 0 or tally.done == datasets):
                tally.save(path)
        rows.append(tally.row(label, loss))
        seconds += tally.seconds
        print(rows[-1], flush=True)
    return rows, seconds, carried


def _datasets(setting: tuple, datasets: int) -> tuple[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The setting's label and its datasets (x, y, truth), drawn in order from its own seed."""
    if len(setting) == 2:
        n, noise = setting
        rng = np.random.default_rng(n + (noise == "t3"))
        return f"n = {n}, {noise} noise", [(*dataset(rng, n, noise), TRUTH) for _ in range(datasets)]
    n, p, noise = setting
    rng = np.random.default_rng(100 * n + p + (noise == "t3"))
    return f"n = {n}, {p} parameters, {noise} noise", [wide_dataset(rng, n, p, noise) for _ in range(datasets)]


def _method(setting: tuple, loss: str, monte_carlo_cutoff: bool, refitted: bool) -> str:
    """What a loss's intervals are in a setting, as a tally's file is named: the loss, and for the median the
    rank test's cutoff, for Huber whether its draws are refitted (only where ``analyse`` refits them)."""
    if loss == "mae" and not monte_carlo_cutoff:
        return "mae-normal-cutoff"
    if loss == "huber" and _refits(setting, refitted):
        return "huber-refitted"
    return loss


def _refits(setting: tuple, refitted: bool) -> bool:
    """Whether Huber's draws are refitted in this setting: asked for, wanted there and within the refits' budget."""
    if not refitted or len(setting) == 2:
        return False
    n, p, _ = setting
    return huber_bootstrap_wanted(n, p) and huber_refits_affordable(n, p, alpha=0.05)


def _slug(setting: tuple) -> str:
    return f"n{setting[0]}-{setting[1]}" if len(setting) == 2 else f"n{setting[0]}-p{setting[1]}-{setting[2]}"


SAVE_EVERY = 10  # datasets between a tally's saves: what an interrupted run loses at most


class Tally:
    """One loss's count of covering intervals over a setting's datasets, ours and statsmodels', so far.

    A run with ``--parts`` saves it every ``SAVE_EVERY`` datasets and reads it back on the next run, which goes on
    from where it stopped: a table whose settings take longer than a sitting is measured over several. Every
    dataset's intervals are a function of the dataset alone, so a tally measured in parts equals one measured at
    once. It is read back only where the code still computes the same intervals: the intervals of its first,
    middle and last datasets (those measured so far), ours and statsmodels', recomputed, must equal the saved ones
    but for rounding (1e-9 relative: another thread count or machine); where any differs, the loss is measured
    again from its first dataset."""

    def __init__(
        self,
        datasets: int,
        done: int = 0,
        ours: int = 0,
        theirs: int = 0,
        intervals: int = 0,
        seconds: float = 0.0,
        canaries: dict | None = None,
    ) -> None:
        self.datasets, self.done, self.ours, self.theirs, self.intervals = datasets, done, ours, theirs, intervals
        self.seconds, self.canaries = seconds, canaries or {}

    @classmethod
    def resumed(cls, path: Path | None, data: list, loss: str, monte_carlo_cutoff: bool, refitted: bool) -> Tally:
        """The tally saved at ``path`` where its canaries still hold, else a new one."""
        if path is None or not path.exists():
            return cls(len(data))
        saved = cls(**json.loads(path.read_text()))
        for i, kept in saved.canaries.items():
            x, y, _ = data[int(i)]
            now = _intervals(x, y, loss, monte_carlo_cutoff, refitted)
            if not all(np.allclose(kept[side], now[side], rtol=1e-9, atol=0, equal_nan=True) for side in now):
                print(f"{path.name}: dataset {i}'s intervals changed; measuring again", flush=True)
                return cls(len(data))
        return saved

    def add(self, i: int, sample: tuple, loss: str, monte_carlo_cutoff: bool, refitted: bool) -> None:
        """Dataset ``i``'s intervals counted (the datasets in order)."""
        x, y, truth = sample
        started = time.perf_counter()
        intervals = _intervals(x, y, loss, monte_carlo_cutoff, refitted)
        self.seconds += time.perf_counter() - started
        covered = {side: int(((v[:, 0] <= truth) & (truth <= v[:, 1])).sum()) for side, v in intervals.items()}
        self.ours, self.theirs, self.intervals = (
            self.ours + covered["ours"],
            self.theirs + covered["statsmodels"],
            self.intervals + len(truth),
        )
        if i in {0, self.datasets // 2, self.datasets - 1}:
            self.canaries[str(i)] = {side: v.tolist() for side, v in intervals.items()}
        self.done = i + 1

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vars(self)) + "\n")

    def row(self, label: str, loss: str) -> list:
        return [
            label,
            loss,
            f"{self.ours / self.intervals:.1%}",
            f"{self.theirs / self.intervals:.1%}",
            f"{self.intervals}",
        ]


def _intervals(x: np.ndarray, y: np.ndarray, loss: str, monte_carlo_cutoff: bool, refitted: bool) -> dict:
    return {"ours": ours(x, y, loss, monte_carlo_cutoff, refitted), "statsmodels": statsmodels_intervals(x, y, loss)}


def run_part(
    part: str,
    datasets: int,
    losses: tuple[str, ...],
    monte_carlo_cutoff: bool,
    jobs: int,
    refitted: bool = True,
    designs: list[tuple[int, int]] | None = None,
    parts: Path | None = None,
) -> tuple[list[list], float, int]:
    """(rows, seconds, datasets read back) of every setting of ``part`` (of ``designs`` only, where given),
    ``jobs`` at a time (each setting's datasets come from its own seed)."""
    one = functools.partial(
        measure,
        datasets=datasets,
        losses=losses,
        monte_carlo_cutoff=monte_carlo_cutoff,
        refitted=refitted,
        parts=parts,
    )
    settings = [s for s in SETTINGS[part] if designs is None or len(s) == 2 or s[:2] in designs]
    if jobs == 1:
        measured = dict(enumerate(map(one, settings)))
    else:
        torch.set_num_threads(1)  # one core a process
        # The costliest first, each handed to the next free process; the rows are put back in the table's order.
        order = sorted(range(len(settings)), key=lambda i: -_cost(settings[i], refitted and "huber" in losses))
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            measured = dict(zip(order, pool.imap(one, [settings[i] for i in order], chunksize=1), strict=True))
    rows = [row for i in range(len(settings)) for row in measured[i][0]]
    return rows, sum(m[1] for m in measured.values()), sum(m[2] for m in measured.values())


def _cost(setting: tuple, refits: bool) -> int:
    """About how a setting's time grows: as n·p³ where Huber's draws are refitted (``refits``, where ``analyse``
    refits them), else as n·p (n alone, planted)."""
    if len(setting) == 2:
        return setting[0]
    n, p, _ = setting
    return n * p**3 if _refits(setting, refits) else n * p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["planted", "wide", "all"], default="all")
    parser.add_argument("--datasets", type=int, default=None, help="a setting (default: 1000 planted, 400 wide)")
    parser.add_argument("--rank-cutoff", choices=["normal", "monte-carlo"], default="monte-carlo")
    parser.add_argument("--huber-bell-mccaffrey", action="store_true", help="Huber's t, its draws not refitted")
    parser.add_argument("--designs", nargs="+", default=None, help="wide designs to keep, as 32x7")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="settings measured side by side")
    parser.add_argument("--parts", type=Path, default=None, help="keep each loss's tally here and go on from it")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # QuantReg's iteration warnings on some datasets
    normal_cutoff = args.rank_cutoff == "normal"
    bell_mccaffrey = args.huber_bell_mccaffrey
    losses = ("mae",) if normal_cutoff else ("huber",) if bell_mccaffrey else LOSSES
    designs = None if args.designs is None else [_design(parser, d) for d in args.designs]
    variant = "-normal-cutoff" if normal_cutoff else "-huber-bell-mccaffrey" if bell_mccaffrey else ""
    if designs is not None:  # a part of the wide table: a file of its own, never the whole table's
        variant += "-" + "-".join(args.designs)
    header = ["setting", "loss", "lit_linreg", "statsmodels (its default)", "intervals"]
    for part, name, default in (("planted", "coverage", 1000), ("wide", "coverage-wide", 400)):
        if args.part not in (part, "all"):
            continue
        started = time.perf_counter()
        datasets = args.datasets or default
        rows, seconds, carried = run_part(
            part, datasets, losses, not normal_cutoff, args.jobs, not bell_mccaffrey, designs, args.parts
        )
        what = "nominal 95% intervals"
        if normal_cutoff:
            what = "intervals from the rank-score test's normal cutoff (mae)"
        elif bell_mccaffrey:
            what = "Huber's intervals from its sandwich's t on Bell and McCaffrey's degrees of freedom"
        plain = not variant and args.parts is None
        command = "make bench-coverage" if plain else f"python -m benchmarks.coverage {' '.join(_arguments())}"
        side_by_side = f", {args.jobs} settings at a time" if args.jobs > 1 else ""
        took = f"in {time.perf_counter() - started:.0f} s{side_by_side}"
        if args.parts is not None:  # the tallies may come from several runs: their analyses' own time
            counts = f"{carried:,} of the {len(rows) * datasets:,} (dataset, loss) counts carried over from before"
            took = f"(the analyses took {seconds:.0f} s in all; {counts})"
        note = (
            f"Share of {what} that contain the planted value; {datasets} datasets a setting. "
            f"Measured on {machine()} {took} (`{command}`)."
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
