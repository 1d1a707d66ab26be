"""The rows: planted-weights people or a table from a file, served as whole batches chosen by the global step."""

from lit_linreg.data.datamodule import LinRegDataModule

__all__ = ["LinRegDataModule"]
