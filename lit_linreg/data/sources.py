"""Where rows come from: the tutorial's planted people, a table in memory, or a memory-mapped table.

Each source knows its columns (the model's feature names and the target) before any row is read, and gives its
rows once, as float64 X and y (planted people: float32), with the notes reading them produced. The data module
is handed a source and does what Lightning asks of it: the held-out split and the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from lit_linreg.data.table import Columns, CsvFormat, choose_columns, read_file, resolve_columns
from lit_linreg.errors import UsageError
from lit_linreg.stats.training import TrainingStatistics

TUTORIAL_FEATURES = ["appearance", "personality", "wealth", "inner_quality"]
TUTORIAL_TARGET = "relationships"


@dataclass
class Rows:
    """A source's rows, and what it already knows of them."""

    x: Tensor
    y: Tensor
    notes: list[str] = field(default_factory=list)
    statistics: TrainingStatistics | None = None  # computed while the rows were written (memory-mapped)
    groups: Tensor | None = None  # each row's cluster, coded 0, 1, ... (--report.cluster)
    weights: Tensor | None = None  # each row's weight (--data.weights)


class Source(Protocol):
    """What the data module asks of a source: its columns before any row is read, then its rows, once."""

    name: str  # where the rows come from, in words (a path, or "the planted data")
    columns: Columns | None  # how a table's columns became the model's inputs (None: planted)
    feature_names: list[str]
    target: str
    truth: tuple[list[float], float] | None  # the planted weights and bias, when known
    memory_mapped: bool

    def rows(self, generator: torch.Generator) -> Rows: ...


class PlantedPeople:
    """The tutorial's people: X ~ N(0, 1), Y = X·w + b + ε with ε ~ N(noise_mean, noise_std), drawn in float32
    from one seeded generator, so a seed fixes every number. The tutorial's own generator never uses its b = 1.1:
    its intercept is the noise mean (1.0); ``true_b: 0, noise_mean: 1`` reproduces it."""

    name = "the planted data"
    columns: Columns | None = None
    memory_mapped = False

    def __init__(
        self,
        n_samples: int,
        true_w: list[float],
        true_b: float,
        noise_std: float,
        noise_mean: float,
        feature_names: list[str] | None,
    ) -> None:
        if n_samples < 1:
            raise UsageError(f"--data.n_samples must be >= 1, got {n_samples}")
        if not noise_std >= 0:
            raise UsageError(f"--data.noise_std must be >= 0, got {noise_std}")
        if not true_w:
            raise UsageError("--data.true_w must name at least one weight, got []")
        if feature_names is not None and len(feature_names) != len(true_w):
            raise UsageError(
                f"--data.true_w has {len(true_w)} weights but --data.feature_names has {len(feature_names)} "
                f"names ({feature_names}); give one name per weight, or feature_names: null"
            )
        self.n_samples, self.true_w, self.true_b = n_samples, list(true_w), true_b
        self.noise_std, self.noise_mean = noise_std, noise_mean
        self.feature_names = list(feature_names or [f"x{i + 1}" for i in range(len(true_w))])
        self.target = TUTORIAL_TARGET

    @property
    def truth(self) -> tuple[list[float], float]:
        """What the fit should find: the noise mean adds to the planted bias (the tutorial's 1.1 became 1.0)."""
        return self.true_w, self.true_b + self.noise_mean

    def rows(self, generator: torch.Generator) -> Rows:
        x = torch.randn(self.n_samples, len(self.true_w), generator=generator)
        noise = torch.randn(self.n_samples, generator=generator).mul_(self.noise_std).add_(self.noise_mean)
        y = (x @ torch.tensor(self.true_w)).add_(self.true_b).add_(noise)  # in place: 10M rows peak lower
        return Rows(x, y)


class InMemoryTable:
    """A table (from a file, or an Arrow table made from a DataFrame or arrays) as float64 X and y in memory.

    ``target`` is Y and ``features`` (default: every other column) are X; text, dictionary (pandas'
    ``category``) and boolean columns, and those named in ``categorical``, become indicator columns.
    """

    truth = None
    memory_mapped = False

    def __init__(
        self,
        table,
        name: str,
        columns: Columns,
        missing: str,
        csv_format: CsvFormat,
        cluster: str | None = None,
        weights: str | None = None,
    ) -> None:
        self._table = table  # None: read from the file ``name`` when the rows are asked for
        self.name, self.columns, self.missing, self.csv_format = name, columns, missing, csv_format
        self.feature_names, self.target = columns.names, columns.target
        # Columns read with the rows that are not features: the rows' clusters (for cluster-robust errors) and
        # their weights.
        self.cluster, self.weights = cluster, weights

    @classmethod
    def of(
        cls,
        table,
        name: str,
        target: str,
        features: Any,
        categorical: Any,
        missing: str,
        csv_format=None,
        cluster: str | None = None,
        weights: str | None = None,
    ) -> InMemoryTable:
        """An Arrow table's columns chosen and resolved now (text columns' levels found); ``csv_format`` is the
        file's, when it was read from one (the rows are converted from the table as read, not reread)."""
        roles = {"--report.cluster": cluster, "--data.weights": weights}
        features = choose_columns(table.column_names, target, _as_list(features), name, roles=roles)
        others = [column for column in (cluster, weights) if column is not None and column not in features]
        table = table.select([*features, target, *others])
        columns = resolve_columns([table], table.schema, target, features, _as_list(categorical) or [], name)
        return cls(table, name, columns, missing, csv_format or CsvFormat(), cluster, weights)

    @classmethod
    def read(
        cls,
        path: str,
        target: str,
        features: Any,
        categorical: Any,
        missing: str,
        csv_format: CsvFormat,
        cluster: str | None = None,
        weights: str | None = None,
    ) -> InMemoryTable:
        """A file's table; read now, unless its columns are fully given (by a checkpoint): then when needed."""
        features, categorical = _as_list(features), _as_list(categorical)
        if features is not None and isinstance(categorical, dict):
            columns = Columns(target, list(features), {k: list(v) for k, v in categorical.items()})
            return cls(None, path, columns, missing, csv_format, cluster, weights)
        table = read_file(path, "--data.path", csv_format)
        return cls.of(table, path, target, features, categorical, missing, csv_format, cluster, weights)

    def rows(self, generator: torch.Generator) -> Rows:
        from lit_linreg.data.store import load_design

        table, self._table = self._table, None  # handed over: converted a block at a time, then released
        x, y, notes, groups, weights = load_design(
            table, self.columns, self.name, self.missing, self.csv_format, self.cluster, self.weights
        )
        return Rows(x, y, notes, groups=groups, weights=weights)


class MemoryMappedTable:
    """A file's table converted once into a memory-mapped cache beside it (``data.mapped``): rows stay on disk."""

    truth = None
    memory_mapped = True

    def __init__(self, path: str, target: str, features: Any, categorical: Any, missing: str, csv_format) -> None:
        from lit_linreg.data.mapped import open_mapped

        self._mapped = open_mapped(path, target, _as_list(features), _as_list(categorical), missing, csv_format)
        self.name, self.columns = path, self._mapped.columns
        self.feature_names, self.target = self.columns.names, target

    def rows(self, generator: torch.Generator) -> Rows:
        mapped = self._mapped
        return Rows(mapped.x, mapped.y, list(mapped.notes), mapped.statistics)


class FittedColumns:
    """A model's columns without its rows: a table given in Python to ``lit_linreg.fit``, which the checkpoint
    does not hold. It can be predicted on (``--data.predict_path``), not trained or measured on."""

    truth = None
    memory_mapped = False
    name = "the table given to lit_linreg.fit"

    def __init__(self, columns: Columns) -> None:
        self.columns, self.feature_names, self.target = columns, columns.names, columns.target

    def rows(self, generator: torch.Generator) -> Rows:
        raise UsageError(
            "this model was fitted on a table given in Python, which its checkpoint does not hold: name the rows "
            "with --data.path"
        )


def _as_list(value: Any) -> Any:
    """One name given as a string is a list of one."""
    return [value] if isinstance(value, str) else value
