"""Fit-loop speed: the tutorial's own loops, a straightforward Lightning port, and lit_linreg, in one process.

    python -m benchmarks.bench_fit                        # all cases, 3 alternating rounds, the best reported
    python -m benchmarks.bench_fit --cases tutorial --rounds 5

Cases: (a) the tutorial (500 x 4, batch 16, 50 epochs, 1600 steps); (b) 4M x 16, batch 16384, one epoch;
(c) 4M x 16, batch 256, one epoch. Variants:

- the tutorial's loop: a shuffled ``DataLoader(TensorDataset)``, autograd, ``p -= lr * grad``, the epoch's loss
  summed with ``.item()`` (what the tutorial writes);
- a hand-rolled loop: the same with the batch gathered by indexing a shuffled permutation, no DataLoader;
- straightforward Lightning: TensorDataset + shuffled DataLoader + automatic optimization + a ``self.log`` a step;
- lit_linreg exactly as ``train.py fit --config configs/seed.yaml`` builds it (TensorBoard, last.ckpt, the
  report callbacks), with output to a file, and with the terminal progress bar.

Only the fit loop is timed: the loops themselves, and for both Lightning variants on_train_start to
on_train_end (lit_linreg's own ``fit_seconds``). Writes benchmarks/results/fit.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import ROOT, machine, markdown, quiet, quiet_fit, write_result

SEED_CONFIG = ROOT / "configs" / "seed.yaml"
BAR = '{"class_path": "lightning.pytorch.callbacks.TQDMProgressBar", "init_args": {"refresh_rate": 100}}'


@dataclass
class Case:
    name: str
    n_rows: int
    n_features: int
    batch_size: int
    epochs: int


CASES = {
    "tutorial": Case("(a) tutorial 500 x 4, batch 16, 50 epochs", 500, 4, 16, 50),
    "big-batch": Case("(b) 4M x 16, batch 16384, 1 epoch", 4_000_000, 16, 16384, 1),
    "small-batch": Case("(c) 4M x 16, batch 256, 1 epoch", 4_000_000, 16, 256, 1),
}
# A fit returns (steps, seconds of fit loop).
Fit = Callable[[], tuple[int, float]]


def planted(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(case.n_rows, case.n_features, generator=generator)
    return x, x @ torch.ones(case.n_features) + 1.1 + 0.01 * torch.randn(case.n_rows, generator=generator)


def tutorial_loop(case: Case) -> Fit:
    x, y = planted(case)
    loader = DataLoader(TensorDataset(x, y), batch_size=case.batch_size, shuffle=True)

    def fit() -> tuple[int, float]:
        w = torch.normal(0.0, 0.1, (case.n_features,)).requires_grad_()
        b = torch.tensor(0.01, requires_grad=True)
        start, steps = time.perf_counter(), 0
        for _ in range(case.epochs):
            total = 0.0
            for xb, yb in loader:
                loss = (xb @ w + b - yb).abs().mean()
                loss.backward()
                with torch.no_grad():
                    for p in (w, b):
                        p -= 0.01 * p.grad
                        p.grad.zero_()
                total += loss.item()
                steps += 1
        return steps, time.perf_counter() - start

    return fit


def hand_rolled_loop(case: Case) -> Fit:
    x, y = planted(case)

    def fit() -> tuple[int, float]:
        w = torch.normal(0.0, 0.1, (case.n_features,)).requires_grad_()
        b = torch.tensor(0.01, requires_grad=True)
        start, steps = time.perf_counter(), 0
        for _ in range(case.epochs):
            for rows in torch.randperm(len(x)).split(case.batch_size):
                loss = (x.index_select(0, rows) @ w + b - y.index_select(0, rows)).abs().mean()
                loss.backward()
                with torch.no_grad():
                    for p in (w, b):
                        p -= 0.01 * p.grad
                        p.grad = None
                steps += 1
        return steps, time.perf_counter() - start

    return fit


class Straightforward(L.LightningModule):
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
    seconds = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self._started


def straightforward_lightning(case: Case) -> Fit:
    x, y = planted(case)
    loader = DataLoader(TensorDataset(x, y), batch_size=case.batch_size, shuffle=True)

    def fit() -> tuple[int, float]:
        clock = FitLoopClock()
        trainer = L.Trainer(
            max_epochs=case.epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
        )  # fmt: skip
        trainer.fit(Straightforward(case.n_features), loader)
        return trainer.global_step, clock.seconds

    return fit


def lit_linreg(case: Case, *extra: str) -> Fit:
    args = [
        "--config",
        str(SEED_CONFIG),
        "--trainer.max_epochs",
        str(case.epochs),
        "--data.n_samples",
        str(case.n_rows),
    ]
    args += ["--data.true_w", str([1.0] * case.n_features), "--data.feature_names", "null", "--data.batch_size"]
    args += [str(case.batch_size), "--report.optimum", "false", "--report.plot", "false"]
    args += ["--trainer.default_root_dir", "/tmp/lit_linreg_bench", *extra]

    def fit() -> tuple[int, float]:
        _, result = quiet_fit(args)
        return result.global_step, result.fit_seconds

    return fit


VARIANTS = {
    "the tutorial's loop (shuffled DataLoader)": tutorial_loop,
    "hand-rolled loop (index gather)": hand_rolled_loop,
    "straightforward Lightning": straightforward_lightning,
    "lit_linreg, output to a file": lit_linreg,
    "lit_linreg, terminal progress bar": lambda case: lit_linreg(case, "--trainer.callbacks+", BAR),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    quiet()
    torch.manual_seed(0)
    rows = []
    for key in args.cases:
        case = CASES[key]
        variants = {name: make(case) for name, make in VARIANTS.items()}
        if case.n_rows > 1_000_000:  # the straightforward port takes minutes here, and has been measured once
            variants.pop("straightforward Lightning")
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.rounds):  # alternate, so that drift on the machine hits every variant alike
            for name, fit in variants.items():
                steps, seconds = fit()
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, steps)
        reference = best["the tutorial's loop (shuffled DataLoader)"][0]
        for name, (seconds, steps) in best.items():
            row = [case.name, name, f"{seconds / steps * 1e6:.1f}", f"{case.n_rows * case.epochs / seconds / 1e6:.3f}"]
            rows.append([*row, f"{seconds / reference:.2f}x"])
            print(" | ".join(rows[-1]), flush=True)
    table = markdown(["case", "variant", "µs / step", "M rows / s", "time vs the tutorial's loop"], rows, "llrrr")
    note = f"Measured on {machine()}; best of {args.rounds} alternating rounds (`make bench`)."
    write_result(args.out, "fit", f"{note}\n\n{table}")


if __name__ == "__main__":
    main()
