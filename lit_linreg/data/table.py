"""Tables from files: CSV (any delimiter), Parquet and Arrow/Feather, read by pyarrow into float64 columns.

A table becomes a design matrix in three steps, each refusing bad input in one line:

1. ``read_file``: the columns a fit needs, parsed by pyarrow (multithreaded CSV, Parquet, Arrow IPC). Cells in
   pyarrow's null spellings ("", NA, NaN, null, ...) are missing.
2. ``resolve_columns``: which column is the target, which are features, and which features are categorical: a
   text column, or one named in ``categorical``. A categorical column becomes indicator columns named
   ``column=level``, one per level but the first (sorted), which is the reference, as in R's and statsmodels'
   treatment coding.
3. ``to_design``: float64 arrays, column by column, with the missing-cell policy applied (``error`` lists the
   missing cells per column in one line; ``drop`` drops those rows and says how many).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lit_linreg.errors import UsageError

PARQUET_SUFFIXES = {".parquet", ".pq"}
ARROW_SUFFIXES = {".feather", ".arrow", ".ipc"}
DELIMITERS = [",", ";", "\t", "|"]
# A text column with more distinct values than this is an identifier, not a category.
MAX_LEVELS = 1000


@dataclass
class Columns:
    """How a file's columns become the model's inputs.

    Attributes:
        target: the column to predict.
        features: the feature columns, in order.
        categorical: for each categorical feature, its levels; the first is the reference (no indicator).
    """

    target: str
    features: list[str]
    categorical: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The model's feature names: a numeric column's own name, ``column=level`` for each indicator."""
        names: list[str] = []
        for column in self.features:
            if column in self.categorical:
                names.extend(f"{column}={level}" for level in self.categorical[column][1:])
            else:
                names.append(column)
        return names

    @property
    def references(self) -> dict[str, str]:
        return {column: levels[0] for column, levels in self.categorical.items()}


def file_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in ARROW_SUFFIXES:
        return "arrow"
    return "csv"


def read_file(path: str, option: str, delimiter: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """The file's columns (all, or ``columns``) as an Arrow table; any defect is one UsageError."""
    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    kind = file_format(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=columns)
        elif kind == "arrow":
            import pyarrow.feather as feather

            table = feather.read_table(path, columns=columns, memory_map=True)
        else:
            table = _read_csv(path, option, delimiter, columns)
    except pa.ArrowInvalid as err:
        raise UsageError(f"{option} {path} is not a readable {kind} file ({first_line(err)})") from None
    except (OSError, pa.ArrowException) as err:
        raise UsageError(f"{option} {path} could not be read ({first_line(err)})") from None
    if table.num_rows == 0:
        raise UsageError(f"{option} {path} has a header but no rows")
    return table


def _read_csv(path: str, option: str, delimiter: str | None, columns: list[str] | None) -> pa.Table:
    header, delimiter = csv_header(path, option, delimiter)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UsageError(f"{option} {path}: the header names {', '.join(map(repr, duplicates))} more than once")
    if columns is not None:
        missing = [name for name in columns if name not in header]
        if missing:
            raise UsageError(f"{option} {path} lacks the column(s) {', '.join(map(repr, missing))}")
    try:
        # Streamed, a block at a time: pyarrow's one-shot reader peaks at ~5x the table it returns, this at ~1.7x.
        reader = csv_reader(path, header, delimiter, columns)
        return pa.Table.from_batches(list(reader), reader.schema)
    except pa.ArrowInvalid as err:
        message = first_line(err)
        if "Expected" in message and "columns" in message:  # a row with the wrong number of cells
            raise UsageError(f"{path}: {message.replace('CSV parse error: ', '')}") from None
        raise


def csv_header(path: str, option: str, delimiter: str | None) -> tuple[list[str], str]:
    """The column names, and the delimiter: given, or the one of , ; tab | that splits the header most."""
    with open(path, newline="", encoding="utf-8-sig") as file:
        first = file.readline()
    if not first.strip():
        raise UsageError(f"{option} {path} is empty: it needs a header line with the column names")
    if delimiter is None:
        delimiter = max(DELIMITERS, key=first.count)
    header = [cell.strip() for cell in next(csv.reader([first], delimiter=delimiter))]
    if first.startswith("\ufeff"):
        header[0] = header[0].lstrip("\ufeff")
    return header, delimiter


def csv_reader(
    path: str,
    header: list[str],
    delimiter: str,
    columns: list[str] | None = None,
    types: dict[str, pa.DataType] | None = None,
    block_size: int = 1 << 22,
):
    """pyarrow's streaming CSV reader for a file whose header ``csv_header`` read: empty cells are missing."""
    from pyarrow import csv as pa_csv

    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1, block_size=block_size),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter),
        convert_options=pa_csv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True),
    )


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def choose_columns(
    header: list[str], target: str, features: list[str] | None, path: str, option: str = "--data.path"
) -> list[str]:
    """The feature columns: the ones asked for, or every column but the target."""
    listed = ", ".join(header)
    if target not in header:
        raise UsageError(f"--data.target {target!r} is not a column of {path} (columns: {listed})")
    if features is None:
        features = [name for name in header if name != target]
    for name in features:
        if name not in header:
            raise UsageError(f"--data.features names {name!r}, which is not a column of {path} (columns: {listed})")
    if target in features:
        raise UsageError(f"--data.features includes the target {target!r}: a column cannot predict itself")
    if not features:
        raise UsageError(f"{option} {path} has no feature columns besides the target {target!r}")
    return list(features)


def resolve_columns(
    batches: Iterable[pa.Table | pa.RecordBatch],
    schema: pa.Schema,
    target: str,
    features: list[str],
    categorical: list[str] | dict[str, list[str]],
    path: str,
) -> Columns:
    """Which features are categorical (text columns, and those named), and their levels, sorted.

    ``batches`` may be the whole table or its blocks one after another (a table bigger than memory).
    """
    named = dict(categorical) if isinstance(categorical, dict) else {name: None for name in categorical}
    for name in named:
        if name not in features:
            raise UsageError(f"--data.categorical names {name!r}, which is not a feature column of {path}")
    text = [n for n in features if n in named or is_text(schema.field(n).type)]
    found: dict[str, set[str]] = {name: set() for name in text if not named.get(name)}
    numeric_looking: dict[str, bool] = {}
    rows = 0
    for batch in batches if found else ():  # no text column to scan: no pass over the rows
        for name in found:
            column = batch.column(name)
            if name not in named:
                if name not in numeric_looking:  # decided on the first block of rows
                    sample = column.drop_null().slice(0, 1000).to_pylist()
                    numeric_looking[name] = sum(map(_is_number, sample)) >= max(1, len(sample) / 2)
                if numeric_looking[name]:
                    _refuse_numbers_as_text(column, name, path, rows)
            found[name].update(str(v) for v in pc.unique(column.cast(pa.string())).to_pylist() if v is not None)
            if len(found[name]) > MAX_LEVELS:
                _too_many_levels(name, path, len(found[name]))
        rows += batch.num_rows
    levels: dict[str, list[str]] = {}
    for name in text:
        chosen = list(named[name]) if named.get(name) else sorted(found[name])
        if len(chosen) < 2:
            only = f" ({chosen[0]!r})" if chosen else ""
            raise UsageError(
                f"categorical column {name!r} of {path} has a single level{only}: it cannot explain anything, "
                "so leave it out of --data.features"
            )
        if len(chosen) > 50 and len(chosen) > rows / 2:
            _too_many_levels(name, path, len(chosen))
        levels[name] = chosen
    return Columns(target, list(features), levels)


def is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _too_many_levels(name: str, path: str, count: int) -> None:
    raise UsageError(
        f"column {name!r} of {path} has {count}{'+' if count > MAX_LEVELS else ''} distinct text values, too many "
        "for a category (an identifier?): leave it out of --data.features"
    )


def _refuse_numbers_as_text(column: pa.ChunkedArray | pa.Array, name: str, path: str, first_row: int) -> None:
    """A text column whose cells are mostly numbers is a numeric column with a typo: say where."""
    for row, value in enumerate(column.to_pylist()):
        if value is not None and not _is_number(value):
            raise UsageError(
                f"{path} line {first_row + row + 2}, column {name!r}: {value!r} is not a number "
                "(name the column in --data.categorical if it is a category)"
            )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_design(
    table: pa.Table,
    columns: Columns,
    path: str,
    missing: str | np.ndarray,
    target_optional: bool = False,
    first_row: int = 0,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str], np.ndarray | None]:
    """(X as float64 rows, y or None, notes, the rows kept or None for all), with the missing-cell policy.

    ``missing`` is the policy (``error`` or ``drop``), or the rows to keep when it was decided for a whole table
    of which this is a block; ``first_row`` is the block's first row in the file, for line numbers; ``out``
    receives X and y (views of arrays allocated once for the whole table).
    """
    has_target = columns.target in table.column_names
    if not has_target and not target_optional:
        raise UsageError(f"--data.target {columns.target!r} is not a column of {path}")
    used = [*columns.features, *([columns.target] if has_target else [])]
    for name in used:
        if name not in table.column_names:
            raise UsageError(f"{path} lacks the feature column {name!r}")
    if isinstance(missing, np.ndarray):
        keep, notes = (None if missing.all() else missing), []
    else:
        keep, notes = missing_rows(table, used, path, missing)
    kept_rows = None
    if keep is not None:
        table = table.filter(pa.array(keep))
        kept_rows = np.flatnonzero(keep)

    def line(row: int) -> int:  # the file's line of a row of the (filtered) table, header = line 1
        return int(kept_rows[row] if kept_rows is not None else row) + first_row + 2

    n = table.num_rows
    x, y = out if out is not None else (np.empty((n, len(columns.names))), np.empty(n) if has_target else None)
    j = 0
    for name in columns.features:
        column = table.column(name)
        if name in columns.categorical:
            levels = columns.categorical[name]
            text = column.cast(pa.string())
            found = pc.index_in(text, value_set=pa.array(levels))
            unseen = np.flatnonzero(found.is_null().to_numpy(zero_copy_only=False))
            if len(unseen):
                row = int(unseen[0])
                raise UsageError(
                    f"{path} line {line(row)}: column {name!r} has the level {text[row].as_py()!r}, which the model "
                    f"was not trained on (levels: {', '.join(levels)})"
                )
            codes = found.to_numpy(zero_copy_only=False)
            for k in range(1, len(levels)):
                x[:, j] = codes == k
                j += 1
        else:
            x[:, j] = _numeric(column, name, path, line)
            j += 1
    if has_target:
        y[:] = _numeric(table.column(columns.target), columns.target, path, line)
    return x, y, notes, keep


def _numeric(column: pa.ChunkedArray, name: str, path: str, line) -> np.ndarray:
    """The column as float64 (a read-only view where Arrow allows), each cell checked to be a finite number."""
    if is_text(column.type):
        for row, value in enumerate(column.to_pylist()):
            if value is not None and not _is_number(value):
                raise UsageError(f"{path} line {line(row)}, column {name!r}: {value!r} is not a number")
        column = column.cast(pa.float64())
    values = column.to_numpy().astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise UsageError(f"{path} line {line(row)}, column {name!r}: '{float(values[row])}' is not a finite number")
    return values


def missing_cells(table: pa.Table, used: list[str]) -> tuple[dict[str, int], np.ndarray]:
    """(missing cells per used column, the rows that have any)."""
    counts = {name: table.column(name).null_count for name in used}
    incomplete = np.zeros(table.num_rows, dtype=bool)
    for name in used:
        if counts[name]:
            incomplete |= ~table.column(name).is_valid().to_numpy(zero_copy_only=False)
    return counts, incomplete


def missing_error(path: str, counts: dict[str, int], lines: list[int], rows: int) -> UsageError:
    per_column = _per_column(counts)
    shown = ", ".join(map(str, lines[:5])) + (", ..." if rows > 5 else "")
    return UsageError(
        f"{path} has {sum(counts.values())} missing cells ({per_column}; lines {shown}): "
        "fill them in, or drop those rows with --data.missing drop"
    )


def missing_rows(table: pa.Table, used: list[str], path: str, missing: str) -> tuple[np.ndarray | None, list[str]]:
    """(the rows to keep, or None for all; notes) under the ``missing`` policy: ``error`` refuses, ``drop`` drops."""
    counts, incomplete = missing_cells(table, used)
    if not incomplete.any():
        return None, []
    for name, count in counts.items():
        if count == table.num_rows:
            raise UsageError(f"column {name!r} of {path} has no values: all {count} cells are missing")
    if missing == "error":
        rows = np.flatnonzero(incomplete)
        raise missing_error(path, counts, [int(r) + 2 for r in rows[:5]], len(rows))
    dropped = int(incomplete.sum())
    per_column = _per_column(counts)
    if dropped == table.num_rows:
        raise UsageError(f"{path}: every row has a missing cell ({per_column}), so --data.missing drop leaves none")
    return ~incomplete, [f"dropped {dropped} of {table.num_rows} rows of {path} with missing cells ({per_column})"]


def _per_column(counts: dict[str, int]) -> str:
    """Missing cells per column, for the messages: "'ads' 2, 'sales' 1"."""
    return ", ".join(f"{name!r} {count}" for name, count in counts.items() if count)


def check_delimiter(delimiter: str | None) -> None:
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
        raise UsageError(f"--data.delimiter must be one character other than a quote or newline, got {delimiter!r}")
