"""Tables from CSV files: a header, then one numeric row per observation. Any defect is one clear UsageError."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lit_linreg.errors import UsageError


@dataclass
class Table:
    """The columns of a CSV file that a fit uses, as float32 tensors, plus the file's own rows for predict."""

    feature_names: list[str]
    x: Tensor
    y: Tensor | None  # None when the target column is absent (allowed for predict files)
    header: list[str]
    rows: list[list[str]]


def read_header(path: str, option: str = "--data.csv_path") -> list[str]:
    """The column names of a CSV file (cheap: reads one line)."""
    with _open(path, option) as file:
        header = next(csv.reader(file), None)
    if not header or not any(cell.strip() for cell in header):
        raise UsageError(f"{option} {path} is empty: it needs a header line with the column names")
    header = [cell.strip() for cell in header]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UsageError(f"{option} {path}: the header names {', '.join(map(repr, duplicates))} more than once")
    return header


def choose_features(header: list[str], target: str, features: list[str] | None, path: str) -> list[str]:
    """The feature columns: the ones asked for, or every column but the target."""
    columns = ", ".join(header)
    if target not in header:
        raise UsageError(f"--data.target {target!r} is not a column of {path} (columns: {columns})")
    if features is None:
        features = [name for name in header if name != target]
    for name in features:
        if name not in header:
            raise UsageError(f"--data.features names {name!r}, which is not a column of {path} (columns: {columns})")
    if target in features:
        raise UsageError(f"--data.features includes the target {target!r}: a column cannot predict itself")
    if not features:
        raise UsageError(f"{path} has no feature columns besides the target {target!r}")
    return list(features)


def read_table(
    path: str, target: str, features: list[str], option: str = "--data.csv_path", target_optional: bool = False
) -> Table:
    """Reads the feature columns (and the target, when present) of every row, checking each cell."""
    header = read_header(path, option)
    missing = [name for name in features if name not in header]
    if missing:
        raise UsageError(f"{option} {path} lacks the feature column(s) {', '.join(map(repr, missing))}")
    has_target = target in header
    if not has_target and not target_optional:
        raise UsageError(f"--data.target {target!r} is not a column of {path} (columns: {', '.join(header)})")
    wanted = [header.index(name) for name in [*features, *([target] if has_target else [])]]
    values: list[list[float]] = []
    rows: list[list[str]] = []
    with _open(path, option) as file:
        reader = csv.reader(file)
        next(reader)
        for line, row in enumerate(reader, start=2):
            if not row:  # a blank line, e.g. at the end
                continue
            if len(row) != len(header):
                raise UsageError(f"{path} line {line} has {len(row)} cells, but the header has {len(header)}")
            values.append([_number(row[i], path, line, header[i]) for i in wanted])
            rows.append(row)
    if not values:
        raise UsageError(f"{option} {path} has a header but no rows")
    data = torch.tensor(values, dtype=torch.float64)
    x = data[:, : len(features)].float()
    y = data[:, len(features)].float() if has_target else None
    return Table(list(features), x, y, header, rows)


def _open(path: str, option: str):
    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    return open(path, newline="", encoding="utf-8-sig")


def _number(cell: str, path: str, line: int, column: str) -> float:
    text = cell.strip()
    if not text:
        raise UsageError(f"{path} line {line}, column {column!r}: the cell is empty")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{path} line {line}, column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{path} line {line}, column {column!r}: {text!r} is not a finite number")
    return value
