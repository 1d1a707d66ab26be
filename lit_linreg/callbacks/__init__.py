"""The callbacks of a run: checkpoints, the report (TensorBoard and the end of fit), predictions, progress."""

from lit_linreg.callbacks.checkpoint import AtomicCheckpointIO, LastCheckpoint
from lit_linreg.callbacks.evaluation import EvaluationRows
from lit_linreg.callbacks.predictions import PredictionWriter
from lit_linreg.callbacks.progress import LogLines, progress_bar
from lit_linreg.callbacks.summary import RunSummary

__all__ = [
    "AtomicCheckpointIO",
    "EvaluationRows",
    "LastCheckpoint",
    "LogLines",
    "PredictionWriter",
    "RunSummary",
    "progress_bar",
]
