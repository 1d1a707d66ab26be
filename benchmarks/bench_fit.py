"""Fit-loop speed: a plain PyTorch loop, a straightforward Lightning version, and lit_linreg, in one process.

    python benchmarks/bench_fit.py                 # all cases, 3 alternating rounds, best round reported
    python benchmarks/bench_fit.py --cases tutorial --rounds 5

Cases: (a) the tutorial (500 x 4, batch 16, 50 epochs); (b) 4M x 16, batch 16384, one epoch;
(c) 4M x 16, batch 256, one epoch. For each: microseconds per SGD step, rows per second, the peak resident
memory above what the process held before the fit, and each ratio against the plain loop. The fit loop alone
is timed: the plain loop itself, and for both Lightning variants on_train_start to on_train_end (data made once
for all; Trainer and CLI set-up, lit_linreg's end-of-fit report outside), as lit_linreg's own ``fit_seconds``.
At 4M rows lit_linreg also runs with ``--data.shuffle_block_rows 256``. Writes the table as markdown to
benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_linreg.cli import cli_main
from lit_linreg.data import LinRegDataModule

warnings.filterwarnings("ignore")
PAGE = 4096
SEED_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "seed.yaml"


@dataclass
class Case:
    name: str
    n_rows: int
    n_features: int
    batch_size: int
    epochs: int


CASES = {
    "tutorial": Case("(a) tutorial 500x4, batch 16, 50 epochs", 500, 4, 16, 50),
    "big-batch": Case("(b) 4M x 16, batch 16384, 1 epoch", 4_000_000, 16, 16384, 1),
    "small-batch": Case("(c) 4M x 16, batch 256, 1 epoch", 4_000_000, 16, 256, 1),
}


class PeakRSS:
    """Samples this process's resident memory every 2 ms; reports the peak above the level at entry."""

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.extra_mb = (self.peak - self.base) / 2**20

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def plain_loop(x: torch.Tensor, y: torch.Tensor, case: Case) -> int:
    """The tutorial's loop: shuffle, gather a batch, MAE, backward, p -= lr * grad."""
    w = torch.normal(0.0, 0.1, (case.n_features,)).requires_grad_()
    b = torch.tensor(0.01, requires_grad=True)
    steps = 0
    for _ in range(case.epochs):
        for rows in torch.randperm(len(x)).split(case.batch_size):
            loss = (x.index_select(0, rows) @ w + b - y.index_select(0, rows)).abs().mean()
            loss.backward()
            with torch.no_grad():
                for p in (w, b):
                    p -= 0.01 * p.grad
                    p.grad = None
            steps += 1
    return steps


class StraightforwardModule(L.LightningModule):
    """What a first Lightning port looks like: automatic optimization, torch SGD, one self.log per step."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(0.1 * torch.randn(n_features))
        self.b = torch.nn.Parameter(torch.tensor(0.01))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = (x @ self.w + self.b - y).abs().mean()
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class FitLoopClock(L.Callback):
    """The fit loop's wall time, from on_train_start to on_train_end, for both Lightning variants alike:
    Trainer set-up and lit_linreg's end-of-fit report (a full-data loss, summary.json) are outside it."""

    seconds = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self._started


# Each variant is prepared outside the clock (Trainer, CLI parsing) and returns its fit, which reports
# (steps, seconds of fit loop).
Fit = Callable[[], tuple[int, float]]


def prepare_plain(x: torch.Tensor, y: torch.Tensor, case: Case) -> Fit:
    def fit() -> tuple[int, float]:
        start = time.perf_counter()
        steps = plain_loop(x, y, case)
        return steps, time.perf_counter() - start

    return fit


def prepare_straightforward(x: torch.Tensor, y: torch.Tensor, case: Case) -> Fit:
    loader = DataLoader(TensorDataset(x, y), batch_size=case.batch_size, shuffle=True)
    clock = FitLoopClock()
    trainer = L.Trainer(
        max_epochs=case.epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    model = StraightforwardModule(case.n_features)
    return lambda: (trainer.fit(model, loader), (trainer.global_step, clock.seconds))[1]


def prepare_lit_linreg(x: torch.Tensor, y: torch.Tensor, case: Case, block_rows: int = 1) -> Fit:
    """lit_linreg as `train.py fit --config configs/seed.yaml` builds it (TensorBoard logging, last.ckpt,
    progress bar), on the same rows as the other variants; the end-of-fit optimum and figure are off."""
    args = ["--config", str(SEED_CONFIG), "--trainer.max_epochs", str(case.epochs)]
    args += ["--data.n_samples", str(case.n_rows), "--data.true_w", str([1.0] * case.n_features)]
    args += ["--data.feature_names", "null", "--data.batch_size", str(case.batch_size)]
    args += ["--data.shuffle_block_rows", str(block_rows), "--report.optimum", "false", "--report.plot", "false"]
    cli = cli_main([*args, "--trainer.default_root_dir", "/tmp/lit_linreg_bench"], run=False)
    cli.datamodule.x, cli.datamodule.y = x, y  # the rows made once for every variant (setup keeps them)
    timer = FitLoopClock()
    cli.trainer.callbacks.append(timer)

    def fit() -> tuple[int, float]:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        (summary,) = [c for c in cli.trainer.callbacks if type(c).__name__ == "RunSummary"]
        print(f"lit_linreg fit_seconds {summary.fit_seconds:.4f} s, benchmark clock {timer.seconds:.4f} s")
        return cli.trainer.global_step, timer.seconds

    return fit


def timed(prepare: Callable[[], Fit]) -> tuple[float, int, float]:
    fit = prepare()
    with PeakRSS() as memory:
        steps, seconds = fit()
    return seconds, steps, memory.extra_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for key in args.cases:
        case = CASES[key]
        data = LinRegDataModule(
            n_samples=case.n_rows, true_w=[1.0] * case.n_features, feature_names=None, batch_size=case.batch_size
        )
        data.setup("fit")
        x, y = data.x, data.y
        runners = {
            "plain PyTorch loop": partial(prepare_plain, x, y, case),
            "straightforward Lightning": partial(prepare_straightforward, x, y, case),
            "lit_linreg": partial(prepare_lit_linreg, x, y, case),
        }
        if case.n_rows > 1_000_000:
            runners["lit_linreg, blocks of 256 rows"] = partial(prepare_lit_linreg, x, y, case, block_rows=256)
        best: dict[str, tuple[float, int, float]] = {}
        for _ in range(args.rounds):  # alternate, so that drift on the machine hits every variant alike
            for name, run in runners.items():
                result = timed(run)
                if name not in best or result[0] < best[name][0]:
                    best[name] = result
        plain_seconds = best["plain PyTorch loop"][0]
        for name, (seconds, steps, extra_mb) in best.items():
            per_step = seconds / steps * 1e6
            row = (case.name, name, per_step, case.n_rows * case.epochs / seconds, extra_mb, seconds / plain_seconds)
            rows.append(row)
            print(
                f"{row[0]:<42} {row[1]:<26} {row[2]:>9.1f} us/step {row[3] / 1e6:>7.3f} M rows/s "
                f"{row[4]:>8.1f} MB peak  x{row[5]:.2f} plain time",
                flush=True,
            )
    header = "| case | variant | µs / step | M rows / s | peak MB above start | time vs plain loop |\n"
    header += "|---|---|---:|---:|---:|---:|\n"
    table = header + "".join(
        f"| {c} | {v} | {s:.1f} | {r / 1e6:.3f} | {m:.0f} | {x:.2f}× |\n" for c, v, s, r, m, x in rows
    )
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    args.out.write_text(
        f"Measured {time.strftime('%Y-%m-%d')} on {machine}; best of {args.rounds} alternating rounds.\n\n{table}"
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
