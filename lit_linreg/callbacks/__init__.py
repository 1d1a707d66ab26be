"""The callbacks of a run: checkpoints, the end-of-fit report, TensorBoard, predictions, progress, evaluation."""

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
