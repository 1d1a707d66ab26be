"""Speed to an accurate answer on 1,000,000 rows x 10: lit_linreg's table defaults against SGD peers.

    python -m benchmarks.bench_peers                  # writes benchmarks/results/peers.md and analysis.md

The table: correlated columns with scales from 1e-3 to 1e4, heavy-tailed noise (t with 3 degrees of freedom),
written once as Parquet. Each fitter, for MAE and MSE: the wall time of its fit, its loss above the exact
optimum, and the largest distance of a weight (or the bias) from the optimum in standard errors (the optimum and
its standard errors from lit_linreg's report, the same for every fitter).

- lit_linreg: ``train.py fit --config configs/csv.yaml`` on the Parquet file; its fit loop's time.
- scikit-learn's ``SGDRegressor``, plain and ``average=True``, on standardized columns (the scaling timed too),
  one pass at a time with ``partial_fit`` up to 20 passes: the time to reach lit_linreg's distance, if it does.
- Vowpal Wabbit (``--loss_function quantile --quantile_tau 0.5``, and squared), one pass over its text file.

Also the end-of-fit report (exact optimum + inference) for each loss at this size: ``analysis.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, markdown, quiet, quiet_fit, write_result
from lit_linreg.regression import Regression

ROWS, COLUMNS = 1_000_000, 10
PASSES = 20


def make_table(path: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(COLUMNS, COLUMNS)) * 0.4 + np.eye(COLUMNS)  # correlated columns
    scales = np.logspace(-3, 4, COLUMNS)
    x = (rng.normal(size=(ROWS, COLUMNS)) @ mixing.T) * scales + rng.normal(size=COLUMNS) * scales * 3
    y = x @ (rng.normal(size=COLUMNS) / scales) + 5 + 2 * rng.standard_t(3, ROWS)
    pq.write_table(pa.table({**{f"c{j}": x[:, j] for j in range(COLUMNS)}, "y": y}), path)
    return x, y


def distance(w: np.ndarray, b: float, result: Regression) -> float:
    return float(np.max(np.abs(np.r_[w, b] - result.params.to_numpy()) / result.bse.to_numpy()))


def loss_gap(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, loss: str, result: Regression) -> float:
    def mean(w_, b_):
        r = x @ w_ + b_ - y
        return float(np.abs(r).mean() if loss == "mae" else np.square(r).mean())

    optimum = result.params.to_numpy()
    return mean(w, b) / mean(optimum[:-1], optimum[-1]) - 1


def sgd_regressor(x, y, loss: str, average: bool, result: Regression, target: float) -> tuple[float, float, float, int]:
    """Passes until within ``target`` standard errors (or 20): (seconds, distance, gap, passes)."""
    from sklearn.linear_model import SGDRegressor
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    scaler = StandardScaler()
    z = scaler.fit_transform(x)
    model = SGDRegressor(
        loss="epsilon_insensitive" if loss == "mae" else "squared_error", epsilon=0.0, average=average, random_state=0
    )
    seconds, passes = time.perf_counter() - started, 0
    while passes < PASSES:
        passes += 1
        started = time.perf_counter()
        model.partial_fit(z, y)
        seconds += time.perf_counter() - started
        w = model.coef_ / scaler.scale_
        b = float(model.intercept_[0] - w @ scaler.mean_)
        d = distance(w, b, result)
        if d <= target:
            break
    return seconds, d, loss_gap(x, y, w, b, loss, result), passes


def vowpal_wabbit(x, y, loss: str, result: Regression, text: Path) -> tuple[float, float, float]:
    from vowpalwabbit import Workspace

    flags = "--loss_function quantile --quantile_tau 0.5" if loss == "mae" else "--loss_function squared"
    started = time.perf_counter()
    workspace = Workspace(f"{flags} -d {text} --quiet")
    seconds = time.perf_counter() - started
    # VW clips predictions to the range of the labels it saw: probe around a typical row, by a tenth of a
    # standard deviation of each column, rather than at the unit vectors.
    center, step = x.mean(0), 0.1 * x.std(0)

    def predict(row: np.ndarray) -> float:
        return workspace.predict("| " + " ".join(f"c{j}:{v:.17g}" for j, v in enumerate(row)))

    at_center = predict(center)
    w = np.array([(predict(center + step[j] * np.eye(COLUMNS)[j]) - at_center) / step[j] for j in range(COLUMNS)])
    b = at_center - w @ center
    workspace.finish()
    return seconds, distance(w, b, result), loss_gap(x, y, w, b, loss, result)


def write_vw(x: np.ndarray, y: np.ndarray, path: Path) -> None:
    with open(path, "w") as file:
        for row, target in zip(x, y, strict=True):
            file.write(f"{target:.9g} | " + " ".join(f"c{j}:{v:.9g}" for j, v in enumerate(row)) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lit_linreg_peers"))
    args = parser.parse_args()
    quiet()
    args.work.mkdir(parents=True, exist_ok=True)
    table = args.work / "table.parquet"
    x, y = make_table(table)
    text = args.work / "table.vw"
    write_vw(x, y, text)
    rows, analysis_rows = [], []
    for loss in ("mae", "mse", "huber"):
        fit_args = ["--config", str(ROOT / "configs" / "csv.yaml"), "--data.path", str(table), "--data.target", "y"]
        fit_args += ["--model.loss", loss, "--report.plot", "false", "--trainer.default_root_dir", str(args.work)]
        _, result = quiet_fit(fit_args)
        analysis_rows.append([loss, f"{result.analysis_seconds:.1f}", result.optimum.method])
        if loss == "huber":
            continue
        ours = result.convergence.max_distance
        rows.append([loss, "lit_linreg, table defaults", f"{result.fit_seconds:.2f}",
                     f"{result.loss_gap:.2e}", f"{ours:.3f}", f"{result.epochs} epochs"])  # fmt: skip
        print(rows[-1], flush=True)
        for average in (False, True):
            seconds, d, gap, passes = sgd_regressor(x, y, loss, average, result, ours)
            name = f"SGDRegressor{'(average=True)' if average else ''}"
            reached = f"{passes} passes" + ("" if d <= ours else f" (not within {ours:.3f} SE after {PASSES})")
            rows.append([loss, name, f"{seconds:.2f}", f"{gap:.2e}", f"{d:.3f}", reached])
            print(rows[-1], flush=True)
        seconds, d, gap = vowpal_wabbit(x, y, loss, result, text)
        rows.append([loss, "Vowpal Wabbit", f"{seconds:.2f}", f"{gap:.2e}", f"{d:.3f}", "1 pass (parsing included)"])
        print(rows[-1], flush=True)
    header = ["loss", "fitter", "fit seconds", "loss above the optimum", "max distance (SE)", "run"]
    note = "1,000,000 rows x 10 (correlated, scales 1e-3 to 1e4, t(3) noise)."
    note += f" Measured on {machine()} (`make bench-peers`)."
    write_result(args.out, "peers", f"{note}\n\n{markdown(header, rows, 'llrrrl')}")
    header = ["loss", "seconds: exact optimum + inference", "method"]
    write_result(
        args.out, "analysis", f"At 1,000,000 rows x 10, {machine()}.\n\n{markdown(header, analysis_rows, 'lrl')}"
    )


if __name__ == "__main__":
    main()
