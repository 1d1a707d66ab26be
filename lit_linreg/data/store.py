"""A table's numbers in memory, and the files ``predict`` reads and writes.

``load_design`` turns a table into float64 X and y (``mapped`` keeps bigger ones on disk); ``PredictTable``
reads a file to predict and writes it back with a prediction column, in the same format, with all its columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from lit_linreg.data.table import Columns, CsvFormat, file_format, missing_rows, numeric_column, read_file, to_design
from lit_linreg.errors import UsageError
from lit_linreg.runs import fresh_path


def load_design(
    table: pa.Table | None,
    columns: Columns,
    path: str,
    missing: str,
    csv_format: CsvFormat,
    cluster: str | None = None,
    weights: str | None = None,
) -> tuple[Tensor, Tensor, list[str], Tensor | None, Tensor | None]:
    """(X, y, notes, cluster codes or None, weights or None) in memory, float64, from the table as read (or read
    now, with the columns given). Each distinct value of the ``cluster`` column (any type) gets a code 0, 1, ...;
    ``weights`` must be positive numbers. A missing cell in either is a missing cell of the row.

    The table is converted a block of rows at a time into arrays allocated once, each block released as soon as
    it is converted: a 1,000,000 x 10 CSV peaks at about twice its numbers' size, not the four or five that a
    copy of the whole table beside its conversion would take. The caller hands the table over (keeps no reference).
    """
    extra = [name for name in (cluster, weights) if name is not None and name not in columns.features]
    if table is None:
        table = read_file(path, "--data.path", csv_format, [*columns.features, columns.target, *extra])
    # The missing-cell policy over the whole table at once (``error`` counts every missing cell).
    keep, notes = missing_rows(table, [*columns.features, columns.target, *extra], path, missing)
    rows = table.num_rows if keep is None else int(keep.sum())
    groups = None
    if cluster is not None:
        labels = table.column(cluster) if keep is None else table.column(cluster).filter(pa.array(keep))
        codes = labels.combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False)
        groups = torch.from_numpy(codes.astype(np.int64))
    row_weights = None
    if weights is not None:
        column = table.column(weights) if keep is None else table.column(weights).filter(pa.array(keep))
        kept_lines = np.arange(table.num_rows) if keep is None else np.flatnonzero(keep)
        values = np.array(numeric_column(column, weights, path, lambda row: int(kept_lines[row]) + 2), dtype=np.float64)
        if not (values > 0).all():
            row = int(np.flatnonzero(~(values > 0))[0])
            raise UsageError(
                f"{path} line {int(kept_lines[row]) + 2}, --data.weights column {weights!r}: {values[row]:g} is not "
                "a positive weight (leave such rows out of the table)"
            )
        row_weights = torch.from_numpy(values)
    x, y = np.empty((rows, len(columns.names))), np.empty(rows)
    batches, first_row, offset = table.to_batches(), 0, 0
    del table
    pa.default_memory_pool().release_unused()  # the reader's freed scratch, before the arrays are allocated
    while batches:
        block = pa.Table.from_batches([batches.pop(0)])
        rows_kept = np.ones(block.num_rows, bool) if keep is None else keep[first_row : first_row + block.num_rows]
        kept = int(rows_kept.sum())
        to_design(
            block,
            columns,
            path,
            rows_kept,
            first_row=first_row,
            out=(x[offset : offset + kept], y[offset : offset + kept]),
        )
        first_row, offset = first_row + block.num_rows, offset + kept
    return torch.from_numpy(x), torch.from_numpy(y), notes, groups, row_weights


@dataclass
class PredictTable:
    """Rows to predict: the file's own columns (written back unchanged) and the model's inputs built from them.

    With ``--data.missing drop`` a row with a missing input gets an empty prediction instead of stopping predict.
    """

    path: str | None
    table: pa.Table
    x: Tensor
    complete: np.ndarray | None = None  # which rows have every input (None: all of them)

    @staticmethod
    def read(path: str, columns: Columns, csv_format: CsvFormat, missing: str = "error") -> PredictTable:
        return PredictTable.of(read_file(path, "--data.predict_path", csv_format), columns, missing, path)

    @staticmethod
    def of(table: pa.Table, columns: Columns, missing: str, path: str | None, name: str | None = None) -> PredictTable:
        """The rows of ``table`` (a file's, or one given in Python, then ``name``d) as the model's inputs."""
        name = name or f"--data.predict_path {path}"
        present = set(table.column_names)
        absent = [column for column in columns.features if column not in present]
        if absent:
            raise UsageError(
                f"{name} lacks the feature column(s) {', '.join(map(repr, absent))} the model was trained on (its "
                f"features: {', '.join(columns.features)})"
            )
        # The target, when present, is written back as it is: only the features have to be complete.
        inputs = Columns(columns.target, columns.features, columns.categorical)
        x, _, _, complete = to_design(table.drop_columns(_present(table, [columns.target])), inputs,
                                      path or name, missing, target_optional=True)  # fmt: skip
        return PredictTable(path, table, torch.from_numpy(x), complete)

    @staticmethod
    def of_rows(x: Tensor, y: Tensor, names: list[str], target: str) -> PredictTable:
        """Generated rows (the planted data), written out with their columns."""
        table = pa.table({**{n: x[:, j].double().numpy() for j, n in enumerate(names)}, target: y.double().numpy()})
        return PredictTable(None, table, x)

    def write(self, columns: dict[str, np.ndarray], directory: Path) -> Path:
        """The rows with ``columns`` appended (one value per complete row each), as ``predictions-<input>.<its
        format>`` in ``directory`` (``-2``, ``-3``... when that name is taken)."""
        kind = file_format(self.path) if self.path else "csv"
        source = Path(self.path).name.split(".")[0] if self.path else "planted"
        out = fresh_path(directory, f"predictions-{source}", kind)  # a second predict never replaces the first
        table = self.table
        for column, predictions in columns.items():
            values = np.full(self.table.num_rows, np.nan) if self.complete is not None else predictions
            if self.complete is not None:
                values[self.complete] = predictions
            mask = np.isnan(values) if self.complete is not None else None
            table = table.append_column(column, pa.array(values, type=pa.float64(), mask=mask))
        if kind == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, out)
        elif kind == "arrow":
            import pyarrow.feather as feather

            feather.write_feather(table, out)
        else:
            from pyarrow import csv as pa_csv

            pa_csv.write_csv(table, out)
        return out


def _present(table: pa.Table, names: list[str]) -> list[str]:
    return [name for name in names if name in table.column_names]
