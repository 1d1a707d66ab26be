"""Puts measured figures into README.md: no number in it is typed by hand.

    python -m benchmarks.readme             # fills every block it can, from benchmarks/results/ and fresh runs

The README marks each generated block with a pair of HTML comments:

- ``<!-- results:NAME -->`` ... ``<!-- /results -->``: the file benchmarks/results/NAME.md a benchmark wrote
  (``make bench``, ``make bench-peers``, ...); a missing file leaves its block as it was;
- ``<!-- run:NAME -->`` ... ``<!-- /run -->``: the command RUNS[NAME] and its output, run now from the
  repository's root, in the order the README shows them (``test`` reads the checkpoint ``diabetes`` wrote).

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
    "contradiction": ["test", "--ckpt_path", CHECKPOINT, "--model.loss", "mse"],
    "bad-lr": ["fit", "--model.lr", "0"],
    "bad-cell": ["fit", "--data.path", "examples/typo.csv", "--data.target", "progression"],
}
BLOCK = re.compile(r"(<!-- (results|run):([\w-]+) -->\n)(.*?)(<!-- /\2 -->)", re.DOTALL)


def run(name: str) -> str:
    args = RUNS[name]
    # A fit writes a run directory of its own; test and predict write into their checkpoint's.
    output_dir = ["--trainer.default_root_dir", str(WORK / name)] if args[0] == "fit" else []
    result = subprocess.run([sys.executable, "train.py", *args, *output_dir], cwd=ROOT, capture_output=True, text=True)
    shown = re.sub(rf"{WORK}/(\w+/)?", "", " ".join([".venv/bin/python train.py", *args]))
    output = re.sub(rf"{WORK}/(\w+/)?", "", result.stdout + result.stderr)
    return f"```\n$ {shown}\n{output.rstrip()}\n```\n"


def fill(match: re.Match) -> str:
    opening, kind, name, old, closing = match.groups()
    if kind == "results":
        path = RESULTS / f"{name}.md"
        new = path.read_text() if path.exists() else old
    else:
        new = run(name)
    return f"{opening}{new}{closing}"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    readme = ROOT / "README.md"
    readme.write_text(BLOCK.sub(fill, readme.read_text()))
    shutil.copyfile(WORK / "diabetes" / "lightning_logs" / "version_0" / "report.png", ROOT / "docs" / "report.png")
    print(f"filled {readme} and docs/report.png")


if __name__ == "__main__":
    main()
