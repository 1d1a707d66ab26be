"""Command line: LightningCLI with the links between data and model, settings from checkpoints, one-line errors."""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import sys
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from lit_linreg.callbacks import (
    EvaluationRows,
    LastCheckpoint,
    PredictionWriter,
    RunSummary,
    TensorBoardReport,
    progress_bar,
)
from lit_linreg.data import LinRegDataModule
from lit_linreg.errors import UsageError
from lit_linreg.model import LinearRegression
from lit_linreg.report import shown_path
from lit_linreg.runs import (
    RUN_VERSION,
    checkpoint_run_directory,
    claim_run_directory,
    discard_unfinished_run,
    inherited_run_version,
)
from lit_linreg.settings import EVALUATING, read_checkpoint, take_settings
from lit_linreg.trainer import CHECKPOINT_IO, TRAINER_DEFAULTS, planned_trainer_arguments

INTERRUPTED = 130  # the exit status of a process stopped by SIGINT, by shell convention
SUBCOMMAND_CALLBACKS = {
    "validate": lambda config: [EvaluationRows()],
    "test": lambda config: [EvaluationRows()],
    "predict": lambda config: [PredictionWriter(config.predict.interval, config.report.alpha)],
}
INTERVALS = ("confidence", "prediction")


class LinRegParser(LightningArgumentParser):
    """Command-line mistakes in one line (jsonargparse prints the whole usage, dozens of lines, by default)."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:  # parsing from inside Lightning, which handles the exception itself
            return super().error(message, ex)
        raise UsageError(" ".join(line.strip() for line in message.strip().splitlines() if line.strip()))


class LinRegCLI(LightningCLI):
    """LightningCLI plus the links between data and model, the checkpoint as the source of its settings, and a
    run directory of its own for each fit (``lit_linreg.runs``)."""

    def __init__(self, *args, **kwargs) -> None:
        self.claimed_run_directory: Path | None = None
        argv = sys.argv[1:] if kwargs.get("args") is None else kwargs["args"]
        self.requested = argv[0] if isinstance(argv, list | tuple) and argv else None
        try:
            super().__init__(*args, **kwargs)
        except (UsageError, MisconfigurationException):
            if self.claimed_run_directory is not None:
                discard_unfinished_run(self.claimed_run_directory)
            raise
        finally:
            if self.claimed_run_directory is not None:
                os.environ.pop(RUN_VERSION, None)  # the DDP processes it was for have ended

    def subcommands(self) -> dict[str, set[str]]:
        """The parser of the subcommand named first on the command line only (all of them for ``--help`` or an
        option first): each is built from the classes' signatures, ~0.1 s apiece, in every command."""
        every = LightningCLI.subcommands()
        return {self.requested: every[self.requested]} if self.requested in every else every

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # checkpoints/last.ckpt, always current; its cadence is --checkpoint.every_seconds / every_n_epochs.
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        # The end-of-fit result: --report.optimum, --report.covariance, --report.bootstrap, --report.alpha....
        parser.add_lightning_class_args(RunSummary, "report")
        parser.add_argument(
            "--log_level",
            type=str,
            default="WARNING",
            help="Level of Lightning's own messages: INFO brings back its device lines, tips and model summary.",
        )
        parser.add_argument(
            "--predict.interval",
            type=str | None,
            default=None,
            help="predict only: add the exact optimum's prediction and its (1 - --report.alpha) interval, "
            "'confidence' for the mean or 'prediction' for a new observation (least squares).",
        )
        # The data decides how many weights there are and what they are called; the model is never told twice.
        parser.link_arguments("data.n_features", "model.n_features", apply_on="instantiate")
        parser.link_arguments("data.feature_names", "model.feature_names", apply_on="instantiate")
        parser.link_arguments("data.target", "model.target", apply_on="instantiate")
        # The cluster column is a report setting that the data reads with the table.
        parser.link_arguments("report.cluster", "data.cluster")
        # One seed fixes the data, every epoch's shuffle and the initial weights.
        parser.link_arguments("seed_everything", "data.seed", compute_fn=_explicit_seed)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        quiet_console(config.log_level)
        interval = config.predict.interval
        if interval is not None and (subcommand != "predict" or interval not in INTERVALS):
            raise UsageError(f"--predict.interval {interval}: give confidence or prediction, to predict")
        path = config.get("ckpt_path")
        if subcommand in EVALUATING and not path:
            raise UsageError(
                f"{subcommand} needs a trained model: pass --ckpt_path RUN/checkpoints/last.ckpt (written by fit)"
            )
        if subcommand in EVALUATING and config.trainer.get("default_root_dir") is None:
            # Into the checkpoint's run directory (predictions), with no new lightning_logs/version_N of their own.
            config.trainer.default_root_dir = str(checkpoint_run_directory(path))
            if config.trainer.get("logger") is None:
                config.trainer.logger = False
        if subcommand in ("fit", "predict"):  # validate and test write nothing
            check_output_directory(config.trainer.get("default_root_dir") or os.getcwd())
        # Lightning reads the checkpoint's model settings right after this: check them, and the data's, first.
        if path:
            defaults = parser.parse_args([subcommand])[subcommand]
            take_settings(read_checkpoint(path), config, defaults, subcommand, path)
        if config.model.get("loss") is None:  # least squares for a table, as its peers; the tutorial's mae
            config.model.loss = "mse" if config.data.get("path") or config.data.get("target") else "mae"

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init  # run=False: none
        trainer = config["trainer"]
        callbacks = list(trainer.get("callbacks") or [])
        if trainer.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(progress_bar())
        # Each callback is called at every hook of every step (~7 µs a step here): only those the command uses.
        callbacks += SUBCOMMAND_CALLBACKS.get(self.subcommand, lambda config: [])(config)
        if self.subcommand in EVALUATING:
            self.save_config_callback = None  # the run's config.yaml is the fit's: leave it as it is
        if self.subcommand == "fit":
            callbacks.append(TensorBoardReport())
            # The rows are read (a bad cell refused) and the run planned before the run's directory is made.
            kwargs.update(planned_trainer_arguments(self.datamodule, self.model, trainer))
            if trainer.get("logger") in (None, True):
                kwargs["logger"] = self._run_logger(trainer.get("default_root_dir") or os.getcwd())
        return super().instantiate_trainer(callbacks=callbacks, **kwargs)

    def after_fit(self) -> None:
        """The result, printed by the process that wrote it; then where it is, or how to resume."""
        summary = next((c for c in self.trainer.callbacks if isinstance(c, RunSummary)), None)
        if summary is None or summary.result is None:
            return
        result = summary.result
        print(result.summary())
        done = f"{result.global_step} steps in {result.fit_seconds:.2f} s"
        if result.interrupted:
            config, checkpoint = summary.log_dir / "config.yaml", summary.log_dir / "checkpoints" / "last.ckpt"
            # The interpreter and the program this run was started with (`python` may not be the venv's).
            program = [shown_path(sys.executable), shown_path(sys.argv[0])]
            resume = shlex.join(
                [*program, "fit", "--config", shown_path(config), "--ckpt_path", shown_path(checkpoint)]
            )
            print(f"interrupted at step {result.global_step}; resume with: {resume}")
        print(f"{done}; logs and summary.json in {shown_path(summary.log_dir)}")

    def _run_logger(self, root: str) -> TensorBoardLogger:
        """Lightning's default logger, in a run directory claimed atomically: by this process, or by the DDP
        process that launched it."""
        version = inherited_run_version()
        if version is None:
            self.claimed_run_directory = claim_run_directory(root)
            version = int(self.claimed_run_directory.name.removeprefix("version_"))
            os.environ[RUN_VERSION] = str(version)
        return TensorBoardLogger(save_dir=root, version=version)


def _explicit_seed(seed: int | bool) -> int:
    # `seed_everything: true` would draw a random seed after the data's seed was set: refuse it.
    if isinstance(seed, bool):
        raise UsageError(f"--seed_everything must be an integer (it also seeds the data), got {seed}")
    if not 0 <= seed < 2**32:  # what numpy's and Lightning's seeding accept
        raise UsageError(f"--seed_everything must be in [0, 2**32), got {seed}")
    return seed


def check_output_directory(root: str) -> None:
    """Refuses, before anything runs, a run directory that cannot be made: under a file, or not writable."""
    path = Path(root)
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise UsageError(f"--trainer.default_root_dir {root}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--trainer.default_root_dir {root}: {existing} is not writable")


def quiet_console(level: str) -> None:
    """Lightning's info lines (devices, tips, "Seed set to") off unless asked for, and one library warning we
    cannot fix at its cause (Lightning 2.6 calls a pytree function that torch 2.13 deprecates)."""
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise UsageError(f"--log_level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level.upper())
    warnings.filterwarnings("ignore", message=re.escape("`isinstance(treespec, LeafSpec)` is deprecated"))


def _peer_lost(err: RuntimeError) -> bool:
    """Whether a collective failed because another rank is gone (gloo and NCCL say so in their messages)."""
    message = str(err)
    return isinstance(err, torch.distributed.DistError) or any(
        sign in message for sign in ("Connection reset by peer", "Connection closed by peer", "NCCL communicator")
    )


def cli_main(args: list[str] | None = None, run: bool = True) -> LinRegCLI:
    """Runs ``train.py``; tests call it in-process with ``args``. ``run=False`` only builds model, data, trainer.

    Bad input ends in one line on stderr and a non-zero status, never a traceback; so do Ctrl-C before training,
    a reader that stops early (``| head``), and a DDP peer that died.
    """
    # Lightning 2.6's CLI calls jsonargparse functions deprecated in 4.49 (removed in 5.0, hence jsonargparse<5):
    # their notices are Lightning's to fix and say nothing to a user, even one who shows warnings.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"lightning\.pytorch\.cli")
    try:
        cli = _run(args, run)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is met in this function
    except (UsageError, MisconfigurationException) as err:  # bad input, ours or a combination Lightning refuses
        raise SystemExit(f"error: {' '.join(str(err).split())}") from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except BrokenPipeError:
        # `train.py fit | head -2`: the reader has gone, so there is no one to tell. Python would raise again
        # flushing stdout at exit; the shell's status for a writer whose pipe closed is 128 + SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(128 + signal.SIGPIPE) from None
    except PermissionError as err:  # a run directory made read-only, or a file locked, while running
        raise SystemExit(f"error: {err.filename or 'a file'} could not be written ({err.strerror})") from None
    except RuntimeError as err:
        if not _peer_lost(err):
            raise
        # The group can be neither closed nor left: gloo's teardown can wait on the dead peer (2 runs in 10 hung
        # so), and left to Python's shutdown its threads can abort the process after the line below ("terminate
        # called without an active exception", seen in CI). Lightning has run its exception hooks (the loggers
        # finalized; last.ckpt is already on disk, atomically), so the process ends here, its output flushed.
        print(
            "error: another process of this DDP run stopped, so no collective can complete; resume the run from "
            "its last.ckpt",
            file=sys.stderr,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    checkpoint = next((c for c in getattr(cli.trainer, "callbacks", []) if isinstance(c, LastCheckpoint)), None)
    if run and checkpoint is not None and checkpoint.interrupted:
        raise SystemExit(128 + (checkpoint.signal or signal.SIGINT))  # the shell's status for that signal
    return cli


def main() -> None:
    """The ``lit-linreg`` command, ``train.py`` installed. pip's script exits with what its entry point returns, so
    this returns nothing: the CLI object ``cli_main`` returns would be printed and exit with status 1."""
    cli_main()


def _run(args: list[str] | None, run: bool) -> LinRegCLI:
    cli = LinRegCLI(
        LinearRegression,
        LinRegDataModule,
        parser_class=LinRegParser,
        seed_everything_default=42,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        # The tutorial's 50 epochs; --trainer.max_epochs null lets the plan choose.
        trainer_defaults={**TRAINER_DEFAULTS, "max_epochs": 50, "plugins": [{"class_path": CHECKPOINT_IO}]},
        args=args,
        run=run,
    )
    if run and torch.distributed.is_available() and torch.distributed.is_initialized():
        # Every rank leaves together, its process group closed. A rank that reaches Python's shutdown while
        # gloo's worker thread still releases a collective's tensors (rank 1 right after the report's log_dir
        # broadcast) is aborted by it ("terminate called without an active exception"): the barrier makes the
        # ranks leave together, and destroying the group joins gloo's threads before the interpreter goes.
        cli.trainer.strategy.barrier("exit")
        torch.distributed.destroy_process_group()
    return cli
