"""lit_linreg: which columns drive this outcome, how much, and how sure. Linear regression by SGD as a PyTorch
Lightning project, checked against the exact optimum and its inference.

    import lit_linreg
    result = lit_linreg.fit(df, "progression")   # a DataFrame, an Arrow table, a file's path, or (X, y)
    print(result.summary()); result.params; result.conf_int(0.1); result.predict(new_df)

``import lit_linreg`` imports neither Lightning nor torch: they are imported by the first fit or load.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("lit-linreg")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from lit_linreg.api import fit, load
    from lit_linreg.regression import Regression

# Each public name, and the module it comes from when first used.
_LAZY = {"fit": "lit_linreg.api", "load": "lit_linreg.api", "Regression": "lit_linreg.regression"}
__all__ = ["Regression", "__version__", "fit", "load"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lit_linreg' has no attribute {name!r}")
