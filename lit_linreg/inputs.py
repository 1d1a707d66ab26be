"""What Python users hand to ``lit_linreg.fit`` and ``Regression.predict``, as the Arrow tables files become.

A pandas or polars DataFrame, a pyarrow Table, a path to a CSV/Parquet/Arrow file, or arrays: ``(X, y)`` to fit,
``X`` to predict. A DataFrame becomes the same Arrow table its CSV would: a pandas ``category`` column is
dictionary-encoded (categorical, as a text column is), a missing cell (None, NaN, NaT, pd.NA) is null, and the
index is dropped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa

from lit_linreg.data.store import PredictTable
from lit_linreg.data.table import Columns, CsvFormat
from lit_linreg.errors import UsageError


def is_path(data: Any) -> bool:
    return isinstance(data, str | os.PathLike)


def as_arrow(data: Any, what: str = "data") -> tuple[pa.Table, str]:
    """(the table, its name in messages) for a DataFrame, an Arrow table or a 2-d array."""
    if isinstance(data, pa.Table):
        return data, "the pyarrow Table"
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        names = [str(c) for c in data.columns]
        if len(set(names)) != len(names):
            raise UsageError(f"the DataFrame's column names repeat: {names}")
        try:
            return pa.Table.from_pandas(data.set_axis(names, axis=1), preserve_index=False), "the DataFrame"
        except (pa.ArrowException, TypeError, ValueError) as err:  # a column of mixed types, say
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise UsageError(f"the DataFrame could not be read as a table: {reason}") from None
    if module == "polars" and hasattr(data, "to_arrow"):
        return data.to_arrow(), "the polars DataFrame"
    if hasattr(data, "__array__") or isinstance(data, list):
        array = np.asarray(data)
        if array.ndim != 2:
            raise UsageError(f"{what} must be a 2-d array (rows x columns), got {array.ndim} dimensions")
        return _columns({f"x{j + 1}": array[:, j] for j in range(array.shape[1])}), "the array"
    raise UsageError(
        f"{what} must be a pandas or polars DataFrame, a pyarrow Table, a file's path or arrays, got "
        f"{type(data).__name__}"
    )


def features_and_target(x: Any, y: Any, target: str | None) -> tuple[pa.Table, str, str]:
    """``(X, y)`` as one table: X's columns (x1..xd for an array), then y named ``target`` (or y's own name)."""
    table, name = as_arrow(x, "X")
    values = np.asarray(y)
    if values.ndim != 1 or len(values) != table.num_rows:
        raise UsageError(f"y must be one value per row of X ({table.num_rows}), got shape {values.shape}")
    target = target or getattr(y, "name", None) or "y"
    if target in table.column_names:
        raise UsageError(f"the target's name {target!r} is also a column of X: name it with target=")
    return table.append_column(str(target), _column(values)), name, str(target)


def prediction_rows(data: Any, settings: dict[str, Any] | None, names: list[str]) -> tuple[np.ndarray, Any, Any]:
    """(the model's inputs as float64 rows, which rows are complete or None, the rows' index) for new rows."""
    settings = settings or {}
    if "features" in settings:
        columns = Columns(settings["target"], list(settings["features"]), dict(settings.get("categorical") or {}))
    else:  # planted: the columns are the weights' names
        columns = Columns("", list(names), {})
    missing = settings.get("missing", "error")
    index = None
    if is_path(data):
        csv_format = CsvFormat(settings.get("delimiter"), settings.get("encoding", "utf-8"))
        rows = PredictTable.read(os.fspath(data), columns, csv_format, missing)
    else:
        if hasattr(data, "__array__") and not hasattr(data, "columns") and not isinstance(data, pa.Table):
            array = np.asarray(data)  # raw feature columns, in the fit's order
            if array.ndim != 2 or array.shape[1] != len(columns.features):
                raise UsageError(
                    f"the array has shape {array.shape}; the model needs rows of its {len(columns.features)} "
                    f"feature columns ({', '.join(columns.features)})"
                )
            data = _columns({name: array[:, j] for j, name in enumerate(columns.features)})
        index = getattr(data, "index", None) if type(data).__module__.startswith("pandas") else None
        table, name = as_arrow(data)
        rows = PredictTable.of(table, columns, missing, None, name)
    return rows.x.numpy(), rows.complete, index


def _column(values: np.ndarray) -> pa.Array:
    """An array's values as an Arrow column, NaN a missing cell (as pandas' NaN is, and a CSV's empty cell)."""
    return pa.array(values, from_pandas=True)


def _columns(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({name: _column(values) for name, values in columns.items()})
