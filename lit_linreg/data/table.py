"""Tables from files: CSV (any delimiter, any encoding, compressed or not), Parquet and Arrow/Feather, read by
pyarrow into float64 columns.

A table becomes a design matrix in three steps, each refusing bad input in one line:

1. ``read_file``: the columns a fit needs, parsed by pyarrow (multithreaded CSV, Parquet, Arrow IPC). Cells in
   pyarrow's null spellings ("", NA, NaN, null, ...) are missing.
2. ``resolve_columns``: which column is the target, which are features, and which features are categorical: a
   text column, or one named in ``categorical``. A categorical column becomes indicator columns named
   ``column=level``, one per level but the first (sorted: text as text, a numeric code by its value), which is
   the reference, as in R's and statsmodels' treatment coding.
3. ``to_design``: float64 arrays, column by column, with the missing-cell policy applied (``error`` lists the
   missing cells per column in one line; ``drop`` drops those rows and says how many).
"""

from __future__ import annotations

import codecs
import csv
import re
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
# The largest magnitude a cell may have: the moments and Gram matrices of a fit sum squares of cells (and of
# their products), which overflow float64 (1.8e308) long before a cell does.
MAX_MAGNITUDE = 1e100


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is spelled: its delimiter (``None``: the one of , ; tab | that splits the header most) and
    its text encoding. A ``.gz``, ``.bz2``, ``.zst`` or ``.lz4`` file is decompressed as it is read."""

    delimiter: str | None = None
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        delimiter = self.delimiter
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '\r\n"'):
            raise UsageError(f"--data.delimiter must be one character other than a quote or newline, got {delimiter!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise UsageError(f"--data.encoding {self.encoding!r} is not a text encoding Python knows") from None


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


def read_file(path: str, option: str, csv_format: CsvFormat, columns: list[str] | None = None) -> pa.Table:
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
            table = _read_csv(path, option, csv_format, columns)
    except pa.ArrowInvalid as err:
        raise UsageError(f"{option} {path} is not a readable {kind} file ({first_line(err)})") from None
    except (OSError, pa.ArrowException) as err:
        raise UsageError(f"{option} {path} could not be read ({first_line(err)})") from None
    if table.num_rows == 0:
        raise UsageError(f"{option} {path} has a header but no rows")
    return table


def _read_csv(path: str, option: str, csv_format: CsvFormat, columns: list[str] | None) -> pa.Table:
    header, delimiter = csv_header(path, option, csv_format)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UsageError(f"{option} {path}: the header names {', '.join(map(repr, duplicates))} more than once")
    if columns is not None:
        missing = [name for name in columns if name not in header]
        if missing:
            raise UsageError(f"{option} {path} lacks the column(s) {', '.join(map(repr, missing))}")
    try:
        # Streamed, a block at a time: pyarrow's one-shot reader peaks at ~5x the table it returns, this at ~1.7x.
        reader = csv_reader(path, header, delimiter, csv_format.encoding, columns)
        refuse_binary(reader.schema, path, option)
        return pa.Table.from_batches(list(reader), reader.schema)
    except pa.ArrowInvalid as err:
        raise csv_error(err, path, option) from None


def csv_error(err: pa.ArrowInvalid, path: str, option: str) -> UsageError:
    """pyarrow's complaint about a CSV's content, as one line that says what to do."""
    message = first_line(err)
    if "Expected" in message and "columns" in message:  # a row with the wrong number of cells
        return UsageError(f"{path}: {message.replace('CSV parse error: ', '')}")
    if "UTF8" in message:  # a text cell in another encoding (an Excel export in Latin-1, say)
        return not_utf8(path, option)
    return UsageError(f"{option} {path} is not a readable csv file ({message})")


def not_utf8(path: str, option: str, column: str | None = None) -> UsageError:
    where = f"column {column!r} of " if column else ""
    return UsageError(
        f"{option} {where}{path} has text that is not UTF-8: give its encoding, e.g. --data.encoding latin-1"
    )


def refuse_binary(schema: pa.Schema, path: str, option: str) -> None:
    """pyarrow reads a CSV column whose cells are not valid text as bytes: a file in another encoding."""
    for name, kind in zip(schema.names, schema.types, strict=True):
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise not_utf8(path, option, name)


def csv_header(path: str, option: str, csv_format: CsvFormat) -> tuple[list[str], str]:
    """The column names, and the delimiter: given, or the one of , ; tab | that splits the header most."""
    head = b""
    try:
        with pa.input_stream(path, compression="detect") as stream:  # decompressed, as pyarrow's reader will
            while b"\n" not in head and (chunk := stream.read(1 << 16)):
                head += chunk
    except (OSError, pa.ArrowException) as err:
        raise UsageError(f"{option} {path} could not be read ({first_line(err)})") from None
    raw = head.split(b"\n", 1)[0].removeprefix(codecs.BOM_UTF8)
    try:
        first = raw.decode(csv_format.encoding)
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{option} {path}: its header is not {csv_format.encoding} (byte {raw[err.start]:#x}): give its encoding, "
            "e.g. --data.encoding latin-1"
        ) from None
    if not first.strip():
        raise UsageError(f"{option} {path} is empty: it needs a header line with the column names")
    delimiter = csv_format.delimiter or max(DELIMITERS, key=first.count)
    header = [cell.strip() for cell in next(csv.reader([first.rstrip("\r")], delimiter=delimiter))]
    return header, delimiter


def csv_reader(
    path: str,
    header: list[str],
    delimiter: str,
    encoding: str,
    columns: list[str] | None = None,
    types: dict[str, pa.DataType] | None = None,
    block_size: int = 1 << 22,
):
    """pyarrow's streaming CSV reader for a file whose header ``csv_header`` read: empty cells are missing."""
    from pyarrow import csv as pa_csv

    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(
            column_names=header, skip_rows=1, block_size=block_size, encoding=_arrow_encoding(encoding)
        ),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter),
        convert_options=pa_csv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=True),
    )


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:160]


def choose_columns(
    header: list[str],
    target: str,
    features: list[str] | None,
    path: str,
    option: str = "--data.path",
    roles: dict[str, str | None] | None = None,
) -> list[str]:
    """The feature columns: the ones asked for, or every column but the target and those with another role
    (``roles``: the option naming each, ``--data.weights`` or ``--report.cluster``, and its column). A cluster
    column may also be a feature when ``features`` names it (fixed effects with errors clustered by them)."""
    listed = ", ".join(header)
    if target not in header:
        raise UsageError(f"--data.target {target!r} is not a column of {path} (columns: {listed})")
    roles = {option_: name for option_, name in (roles or {}).items() if name is not None}
    if len(set(roles.values())) < len(roles):
        raise UsageError(f"{' and '.join(roles)} name the same column {next(iter(roles.values()))!r}")
    for option_, name in roles.items():
        if name not in header:
            raise UsageError(f"{option_} {name!r} is not a column of {path} (columns: {listed})")
        as_feature = option_ != "--report.cluster" and features is not None and name in features
        if name == target or as_feature:
            raise UsageError(f"{option_} {name!r} is the target or a feature: name a column of its own")
    if features is None:
        features = [name for name in header if name != target and name not in roles.values()]
    for name in features:
        if name not in header:
            raise UsageError(f"--data.features names {name!r}, which is not a column of {path} (columns: {listed})")
    repeated = sorted({name for name in features if features.count(name) > 1})
    if repeated:
        raise UsageError(f"--data.features names {', '.join(map(repr, repeated))} more than once")
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
                    _refuse_thousands_separators(sample, name, path)
                    numeric_looking[name] = sum(map(_is_number, sample)) >= max(1, len(sample) / 2)
                if numeric_looking[name]:
                    _refuse_numbers_as_text(column, name, path, rows)
            found[name].update(str(v) for v in pc.unique(column.cast(pa.string())).to_pylist() if v is not None)
            if len(found[name]) > MAX_LEVELS:
                _too_many_levels(name, path, len(found[name]))
        rows += batch.num_rows
    levels: dict[str, list[str]] = {}
    for name in text:
        chosen = list(named[name]) if named.get(name) else sorted(found[name], key=_level_order(schema, name))
        if len(chosen) < 2:
            only = f" ({chosen[0]!r})" if chosen else ""
            raise UsageError(
                f"categorical column {name!r} of {path} has a single level{only}: it cannot explain anything, "
                "so leave it out of --data.features"
            )
        if len(chosen) > 50 and len(chosen) > rows / 2:
            _too_many_levels(name, path, len(chosen))
        levels[name] = chosen
    columns = Columns(target, list(features), levels)
    names = columns.names
    if "bias" in names:  # the report's name for the intercept, and the results' index label for it
        raise UsageError(f"{path}: a feature named 'bias' would share its name with the model's bias: rename it")
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise UsageError(
            f"{path}: the feature name(s) {', '.join(map(repr, clashes))} would stand for two weights (a column of "
            "that name and a categorical column's indicator): rename one of the columns"
        )
    return columns


def _level_order(schema: pa.Schema, name: str):
    """How a column's levels sort: a numeric code by its value, as R's ``factor()`` ("8" before "10"); text as
    text. The first is the reference."""
    return float if not is_text(schema.field(name).type) else None


def is_text(kind: pa.DataType) -> bool:
    """Whether a column of this type holds categories: text, dictionary-encoded values (how pandas saves a
    ``category`` column) and booleans (levels false and true)."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_dictionary(kind)
        or pa.types.is_boolean(kind)
    )


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


THOUSANDS = re.compile(r"[+-]?\d{1,3}([,.' ]\d{3})+([.,]\d+)?")


def _refuse_thousands_separators(sample: list, name: str, path: str) -> None:
    """Numbers written as "1,001" are not a category with a level per number: refused, not parsed, since "1.001"
    means one or a thousand and one depending on the locale."""
    texts = [value.strip() for value in sample if isinstance(value, str)]
    grouped = [text for text in texts if not _is_number(text) and THOUSANDS.fullmatch(text)]
    if grouped and len(grouped) + sum(map(_is_number, texts)) >= len(texts) / 2:
        raise UsageError(
            f"column {name!r} of {path} has numbers written with thousands separators ({grouped[0]!r}): write "
            "them without separators, or name the column in --data.categorical if it is a category"
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
    present = set(table.column_names)  # a set: table.column_names builds a new list at every call
    has_target = columns.target in present
    if not has_target and not target_optional:
        raise UsageError(f"--data.target {columns.target!r} is not a column of {path}")
    used = [*columns.features, *([columns.target] if has_target else [])]
    for name in used:
        if name not in present:
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
            x[:, j] = numeric_column(column, name, path, line)
            j += 1
    if has_target:
        y[:] = numeric_column(table.column(columns.target), columns.target, path, line)
    return x, y, notes, keep


def numeric_column(column: pa.ChunkedArray, name: str, path: str, line) -> np.ndarray:
    """The column as float64 (a read-only view where Arrow allows), each cell checked to be a finite number of a
    size whose squares float64 can sum."""
    kind = column.type
    if pa.types.is_temporal(kind):
        raise UsageError(
            f"column {name!r} of {path} holds dates or times ({kind}): turn it into a number you can interpret "
            "(a year, days since an event) or leave it out of --data.features"
        )
    if not (is_text(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        raise UsageError(f"column {name!r} of {path} holds {kind} values, not numbers: leave it out of --data.features")
    if is_text(kind):
        for row, value in enumerate(column.to_pylist()):
            if value is not None and not _is_number(value):
                raise UsageError(f"{path} line {line(row)}, column {name!r}: {value!r} is not a number")
        column = column.cast(pa.float64())
    elif pa.types.is_integer(kind) and (inexact := _beyond_float64(column.to_numpy())).size:
        row = int(inexact[0])
        raise UsageError(
            f"{path} line {line(row)}, column {name!r}: {column[row].as_py()} is beyond 2**53, where float64 no "
            "longer holds every integer: subtract an offset (or leave it out if it is an identifier)"
        )
    values = column.to_numpy().astype(np.float64, copy=False)
    bad = ~(np.abs(values) <= MAX_MAGNITUDE)  # NaN and infinities too
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "is not a finite number" if not np.isfinite(values[row]) else f"is beyond {MAX_MAGNITUDE:g} in size"
        raise UsageError(
            f"{path} line {line(row)}, column {name!r}: '{float(values[row]):g}' {what}"
            + ("" if not np.isfinite(values[row]) else ": the sums of squares a fit needs would overflow; rescale it")
        )
    return values


def _beyond_float64(integers: np.ndarray) -> np.ndarray:
    """The rows whose integer float64 may not hold exactly (compared as integers: 2**53 + 1 as a float is 2**53)."""
    return np.flatnonzero((integers > 2**53) | (integers < -(2**53)))


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


def _arrow_encoding(encoding: str) -> str:
    # pyarrow reads UTF-8 itself and transcodes anything else through Python's codecs; a BOM is skipped either way.
    return "utf8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
