"""Tables bigger than memory: converted once, a block of rows at a time, into a memory-mapped cache beside them.

The cache holds the design exactly as training reads it: rows of [X, y] (the indicator columns already made),
row-major, float32 when every used column of the file is float32 and float64 otherwise, in
``.<table name>.<key>.lit_linreg.bin``, with a JSON sidecar holding its shape, the columns it was made with
and the training statistics (moments, largest leverage) computed while writing it. The key covers the file's
size, modification time, inode and status-change time and the column arguments, so a changed table (even one
whose size and modification time were kept) or other columns get a new cache.

Training then reads pages of the file through the page cache: they count as the process's file-backed memory,
not its anonymous memory, and the kernel can drop them under pressure. Under DDP every rank maps the same file
and touches only the rows of its own slices; the statistics come from the sidecar, not from another pass.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from lit_linreg.data.table import (
    Columns,
    CsvFormat,
    choose_columns,
    csv_error,
    csv_header,
    csv_reader,
    file_format,
    first_line,
    is_text,
    missing_cells,
    missing_error,
    refuse_binary,
    resolve_columns,
    to_design,
)
from lit_linreg.errors import UsageError
from lit_linreg.stats.moments import Moments, moment_sums
from lit_linreg.stats.training import TrainingStatistics, max_leverage

BLOCK_ROWS = 1 << 16


@dataclass
class MappedTable:
    """X and y as views of the memory-mapped cache, the columns they were made from, and their statistics."""

    x: Tensor
    y: Tensor
    columns: Columns
    notes: list[str]
    statistics: TrainingStatistics


def open_mapped(path: str, target: str, features, categorical, missing: str, csv_format: CsvFormat) -> MappedTable:
    """The table's cache, written first (once, under a lock, whoever asks) if it does not exist yet."""
    if not Path(path).is_file():
        raise UsageError(f"--data.path {path}: no such file")
    data_file, sidecar = _cache_paths(path, [target, features, categorical, missing, csv_format.encoding])
    with open(sidecar.with_suffix(".lock"), "w") as lock:  # one writer, even with several DDP ranks starting
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not sidecar.exists():
            _write_cache(path, target, features, categorical, missing, csv_format, data_file, sidecar)
    meta = json.loads(sidecar.read_text())
    columns = Columns(target, meta["features"], meta["categorical"])
    width = len(columns.names) + 1
    # Copy-on-write: writable for torch, never written back.
    table = torch.from_numpy(np.memmap(data_file, dtype=np.dtype(meta["dtype"]), mode="c", shape=(meta["rows"], width)))
    f64 = torch.float64
    moments = Moments.from_sums(
        meta["rows"], torch.tensor(meta["mean"], dtype=f64), torch.tensor(meta["m2"], dtype=f64)
    )
    statistics = TrainingStatistics.from_moments(moments, columns.names, meta["max_leverage"])
    return MappedTable(table[:, :-1], table[:, -1], columns, meta["notes"], statistics)


def _cache_paths(path: str, arguments: list) -> tuple[Path, Path]:
    source = Path(path)
    stat = source.stat()
    # An edit that keeps the size and restores the modification time (`touch -r`, `cp -p`, rsync) still changes
    # the inode (a new file) or the status-change time (which no tool can set back): both are in the key.
    identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
    key = hashlib.sha256(json.dumps([*identity, *arguments]).encode()).hexdigest()[:16]
    stem = source.parent / f".{source.name}.{key}.lit_linreg"
    return Path(f"{stem}.bin"), Path(f"{stem}.json")


def _write_cache(path, target, features, categorical, missing, csv_format, data_file: Path, sidecar: Path) -> None:
    for stale in data_file.parent.glob(f".{Path(path).name}.*.lit_linreg.*"):
        if not stale.name.startswith(data_file.name.removesuffix(".bin")):
            stale.unlink(missing_ok=True)  # an older cache of this table
    schema = _schema(path, csv_format)
    features = choose_columns(schema.names, target, [features] if isinstance(features, str) else features, path)
    categorical = [categorical] if isinstance(categorical, str) else categorical or []
    used = [*features, target]
    named = set(categorical)
    # Fixed for every block (a CSV's types are otherwise guessed from its first block): text stays text.
    types = {n: pa.string() if n in named or is_text(schema.field(n).type) else pa.float64() for n in used}
    text = [name for name in used if types[name] == pa.string()]  # the levels pass reads only these columns
    columns = resolve_columns(_batches(path, text, csv_format, types), schema, target, features, categorical, path)
    floats = all(pa.types.is_float32(schema.field(name).type) for name in used)
    dtype = np.float32 if floats and not columns.categorical else np.float64
    partial = data_file.with_suffix(".bin.partial")
    rows, first_row, counts, missing_lines, incomplete_rows = 0, 0, {}, [], 0
    with open(partial, "wb") as out:
        for batch in _batches(path, used, csv_format, types):
            table = pa.Table.from_batches([batch])
            batch_counts, incomplete = missing_cells(table, used)
            for name, count in batch_counts.items():
                counts[name] = counts.get(name, 0) + count
            missing_lines += [first_row + int(r) + 2 for r in np.flatnonzero(incomplete)[: 5 - len(missing_lines)]]
            incomplete_rows += int(incomplete.sum())
            if missing == "drop" or not incomplete.any():
                x, y, _, keep = to_design(table, columns, path, "drop", first_row=first_row)
                block = np.empty((len(x), x.shape[1] + 1), dtype=dtype)
                block[:, :-1], block[:, -1] = x, y
                out.write(block.tobytes())
                rows += len(block)
            first_row += table.num_rows
        out.flush()
        os.fsync(out.fileno())
    if incomplete_rows and missing == "error":
        partial.unlink()
        raise missing_error(path, counts, missing_lines, incomplete_rows)
    if rows == 0:
        partial.unlink()
        raise UsageError(f"--data.path {path} has no rows (or none without missing cells)")
    os.replace(partial, data_file)
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed blocks otherwise
    names = columns.names
    mapped = torch.from_numpy(np.memmap(data_file, dtype=dtype, mode="c", shape=(rows, len(names) + 1)))
    # A second pass, over the cache: the same chunks and arithmetic as for a table in memory (Moments.of), so the
    # same statistics to the bit, and with them the same scales, batch size and learning rate, whichever way the
    # rows are held (merging the file's own blocks instead rounded differently in the last digits).
    n, mean, m2 = moment_sums(mapped[:, :-1], mapped[:, -1])
    moments = Moments.from_sums(n, mean, m2)
    design = TrainingStatistics.from_moments(moments, names).design
    leverage = max_leverage(mapped[:, :-1], moments, design.kept)
    dropped = first_row - rows
    per_column = ", ".join(f"{name!r} {count}" for name, count in counts.items() if count)
    notes = [f"dropped {dropped} of {first_row} rows of {path} with missing cells ({per_column})"] if dropped else []
    meta = {"rows": rows, "dtype": np.dtype(dtype).name, "features": columns.features,
            "categorical": columns.categorical, "mean": mean.tolist(), "m2": m2.tolist(), "max_leverage": leverage,
            "notes": notes}  # fmt: skip
    temporary = sidecar.with_suffix(".json.partial")
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, sidecar)


def _schema(path: str, csv_format: CsvFormat) -> pa.Schema:
    """The file's column names and types, without reading its rows (CSV: inferred from its first block)."""
    kind = file_format(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        if kind == "arrow":
            with pa.memory_map(path) as source:
                return pa.ipc.open_file(source).schema
        schema = _csv_reader(path, None, csv_format).schema
        refuse_binary(schema, path, "--data.path")
        return schema
    except pa.ArrowInvalid as err:
        if kind == "csv":
            raise csv_error(err, path, "--data.path") from None
        raise UsageError(f"--data.path {path} is not a readable {kind} file ({first_line(err)})") from None


def _batches(path: str, used: list[str], csv_format: CsvFormat, types: dict | None = None) -> Iterator[pa.RecordBatch]:
    """The used columns, a block of rows at a time, whatever the format."""
    kind = file_format(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            # Memory-mapped, unbuffered, one row group at a time: the anonymous memory this takes is a row group's.
            parquet = pq.ParquetFile(path, memory_map=True, pre_buffer=False)
            yield from parquet.iter_batches(batch_size=BLOCK_ROWS, columns=used, use_threads=False)
        elif kind == "arrow":
            with pa.memory_map(path) as source:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i).select(used)
        else:
            yield from _csv_reader(path, used, csv_format, {n: t for n, t in (types or {}).items() if n in used})
    except pa.ArrowInvalid as err:
        if kind == "csv":
            raise csv_error(err, path, "--data.path") from None
        raise UsageError(f"--data.path {path} could not be read ({first_line(err)})") from None


def _csv_reader(path: str, used: list[str] | None, csv_format: CsvFormat, types: dict | None = None):
    header, delimiter = csv_header(path, "--data.path", csv_format)
    return csv_reader(path, header, delimiter, csv_format.encoding, used, types, block_size=1 << 24)
