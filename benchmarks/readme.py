"""Puts measured figures into README.md: no number in it is typed by hand.

    python -m benchmarks.readme             # fills every block it can, from benchmarks/results/ and fresh runs

The README marks each generated block with a pair of HTML comments:

- ``<!-- results:NAME -->`` ... ``<!-- /results -->``: the file benchmarks/results/NAME.md a benchmark wrote
  (``make bench``, ``make bench-peers``, ...); a missing file leaves its block as it was;
- ``<!-- run:NAME -->`` ... ``<!-- /run -->``: the command RUNS[NAME] and its output, run now from the
  repository's root, in the order the README shows them (``test`` reads the checkpoint ``diabetes`` wrote);
- ``<!-- python:NAME -->`` ... ``<!-- /python -->``: the Python code PYTHON[NAME] and what it printed. Every
  snippet runs in one interpreter, in the README's order, so each goes on from the ones above it, as in a
  notebook; the working directory is a scratch one with the repository's ``examples/`` in it.

docs/report.png is the ``diabetes`` run's figure.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = Path("/tmp/lit_linreg_readme")  # each run's directory: WORK/NAME/lightning_logs/version_0
CHECKPOINT = f"{WORK}/diabetes/lightning_logs/version_0/checkpoints/last.ckpt"
RUNS = {
    "train": ["fit"],
    "diabetes": ["fit", "--config", "configs/csv.yaml"],
    "test": ["test", "--ckpt_path", CHECKPOINT],
    "predict": ["predict", "--ckpt_path", CHECKPOINT, "--data.predict_path", "examples/diabetes.csv"],
    "contradiction": ["test", "--ckpt_path", CHECKPOINT, "--model.loss", "mae"],
    "bad-lr": ["fit", "--model.lr", "0"],
    "bad-cell": ["fit", "--data.path", "examples/typo.csv", "--data.target", "progression"],
}
PYTHON = {
    "fit": """\
import pandas as pd
import lit_linreg

table = pd.read_csv("examples/diabetes.csv")
result = lit_linreg.fit(table, "progression")  # least squares, settings chosen from the table
print(result.summary())""",
    "result": """\
print(result.params[["bmi", "bp", "ltg"]])
print(result.conf_int().loc[["bmi", "bp"]])  # the fit's 95%; for 90%, fit(..., alpha=0.1)
print(f"p(bmi) = {result.pvalues['bmi']:.2g}, R² = {result.rsquared:.4f}, n = {result.nobs}")
print("SGD converged to the optimum:", result.converged)""",
    "predict": """\
new_patients = table.drop(columns="progression").head(3)
print(result.predict(new_patients))
print(result.predict(new_patients, interval="prediction").round(2).to_string())  # 95%, a new patient
result.save("diabetes.ckpt")  # train.py predict --ckpt_path diabetes.ckpt reads it too
print(lit_linreg.load("diabetes.ckpt").params.equals(result.params))""",
    "quantile": """\
top = lit_linreg.fit(table, "progression", loss="quantile", quantile=0.9)  # the 90th percentile, not the mean
print(str(top.summary()).splitlines()[0])
print(top.conf_int().loc[["bmi", "bp", "ltg"]])""",
    "weights": """\
import numpy as np

# Survey weights: say sex 2 is under-sampled, each such patient standing for 1.5; and six blood-pressure bands.
patients = table.assign(stands_for=np.where(table["sex"] == 2, 1.5, 1.0), band=pd.cut(table["bp"], 6).astype(str))
weighted = lit_linreg.fit(patients.drop(columns="band"), "progression", weights="stands_for")
clustered = lit_linreg.fit(patients.drop(columns="stands_for"), "progression", cluster="band")
both = {"WLS": weighted.params, "OLS": clustered.params, "cluster SE": clustered.bse}
print(pd.DataFrame(both).round(3).loc[["bmi", "bp", "ltg"]])
print(clustered.optimum.covariance, "|", clustered.optimum.interval)""",
    "sklearn": """\
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from lit_linreg.sklearn import LinearRegressor

x, y = table.drop(columns="progression"), table["progression"]
print(cross_val_score(make_pipeline(StandardScaler(), LinearRegressor()), x, y, cv=5).round(3))""",
}
MARK = "=== lit_linreg readme snippet ==="
BLOCK = re.compile(r"(<!-- (results|run|python):([\w-]+) -->\n)(.*?)(<!-- /\2 -->)", re.DOTALL)


def run(name: str) -> str:
    args = RUNS[name]
    # A fit writes a run directory of its own; test and predict write into their checkpoint's.
    output_dir = ["--trainer.default_root_dir", str(WORK / name)] if args[0] == "fit" else []
    result = subprocess.run([sys.executable, "train.py", *args, *output_dir], cwd=ROOT, capture_output=True, text=True)
    shown = re.sub(rf"{WORK}/(\w+/)?", "", " ".join([".venv/bin/python train.py", *args]))
    output = re.sub(rf"{WORK}/(\w+/)?", "", result.stdout + result.stderr)
    return f"```\n$ {shown}\n{output.rstrip()}\n```\n"


def run_python(names: list[str]) -> dict[str, str]:
    """Runs the snippets in one interpreter, in order; returns what each printed."""
    scratch = WORK / "python"
    scratch.mkdir(parents=True)
    (scratch / "examples").symlink_to(ROOT / "examples")
    driver = "namespace = {}\n" + "".join(
        f"print({MARK!r}, flush=True)\nexec(compile({PYTHON[name]!r}, {name!r}, 'exec'), namespace)\n" for name in names
    )
    result = subprocess.run([sys.executable, "-c", driver], cwd=scratch, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"a README snippet failed:\n{result.stderr}")
    outputs = result.stdout.split(MARK + "\n")[1:]
    return dict(zip(names, outputs, strict=True))


def fill(match: re.Match, printed: dict[str, str]) -> str:
    opening, kind, name, old, closing = match.groups()
    if kind == "results":
        path = RESULTS / f"{name}.md"
        new = path.read_text() if path.exists() else old
    elif kind == "python":
        new = f"```python\n{PYTHON[name]}\n```\n```\n{printed[name].rstrip()}\n```\n"
    else:
        new = run(name)
    return f"{opening}{new}{closing}"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    readme = ROOT / "README.md"
    text = readme.read_text()
    printed = run_python([name for kind, name in re.findall(r"<!-- (python):([\w-]+) -->", text)])
    readme.write_text(BLOCK.sub(lambda match: fill(match, printed), text))
    shutil.copyfile(WORK / "diabetes" / "lightning_logs" / "version_0" / "report.png", ROOT / "docs" / "report.png")
    print(f"filled {readme} and docs/report.png")


if __name__ == "__main__":
    main()
