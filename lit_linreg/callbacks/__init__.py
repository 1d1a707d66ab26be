"""The callbacks of a run: checkpoints, the result at the end of fit, TensorBoard, predictions, progress."""

from lit_linreg.callbacks.checkpoint import AtomicCheckpointIO, LastCheckpoint
from lit_linreg.callbacks.evaluation import EvaluationRows
from lit_linreg.callbacks.predictions import PredictionWriter
from lit_linreg.callbacks.progress import LogLines, progress_bar
from lit_linreg.callbacks.summary import RunSummary
from lit_linreg.callbacks.tensorboard import TensorBoardReport

__all__ = [
    "AtomicCheckpointIO",
    "EvaluationRows",
    "LastCheckpoint",
    "LogLines",
    "PredictionWriter",
    "RunSummary",
    "TensorBoardReport",
    "progress_bar",
]
