"""Command line: LightningCLI with the data-to-model links, and a safe look at --ckpt_path before Lightning's."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.cli import LightningCLI

from lit_linreg.checkpoint import LastCheckpoint, check_resume, read_checkpoint
from lit_linreg.data import LinRegDataModule
from lit_linreg.errors import UsageError
from lit_linreg.model import LinearRegression
from lit_linreg.report import PredictionWriter, RunSummary, with_progress_bar


class LinRegCLI(LightningCLI):
    """LightningCLI plus the links between data and model, and a check of ``--ckpt_path`` before Lightning's."""

    def add_arguments_to_parser(self, parser) -> None:
        # checkpoints/last.ckpt, always current; its cadence is --checkpoint.every_seconds / every_n_epochs.
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        # The end-of-fit report: --report.optimum, --report.bootstrap, --report.plot.
        parser.add_lightning_class_args(RunSummary, "report")
        # The data decides how many weights there are; the model is never told twice.
        parser.link_arguments("data.n_features", "model.n_features", apply_on="instantiate")
        # One seed fixes the data, every epoch's shuffle and the initial weights.
        parser.link_arguments("seed_everything", "data.seed", compute_fn=_explicit_seed)

    def parse_arguments(self, parser, args) -> None:
        super().parse_arguments(parser, args)
        # Lightning loads --ckpt_path right after parsing, to restore hyperparameters: check it first.
        subcommand = self.config.get("subcommand")
        path = subcommand and self.config[subcommand].get("ckpt_path")
        if path:
            checkpoint = read_checkpoint(path)
            if subcommand == "fit":
                check_resume(checkpoint, self.config[subcommand].as_dict(), path)

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        # Lightning's default bar redraws after every training_step call; ours at most twice a second.
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init  # run=False: none
        trainer_config = config["trainer"]
        return super().instantiate_trainer(callbacks=with_progress_bar(trainer_config), **kwargs)


def _explicit_seed(seed: int | bool) -> int:
    # `seed_everything: true` would draw a random seed after the data's seed was set: refuse it.
    if isinstance(seed, bool):
        raise UsageError(f"--seed_everything must be an integer (it also seeds the data), got {seed}")
    return seed


def cli_main(args: list[str] | None = None, run: bool = True) -> LinRegCLI:
    """Runs ``train.py``; tests call it in-process with ``args``. ``run=False`` only builds model, data, trainer."""
    try:
        return LinRegCLI(
            LinearRegression,
            LinRegDataModule,
            seed_everything_default=42,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={
                "max_epochs": 50,
                # Our sampler already splits every global batch across ranks; Lightning's must not replace it.
                "use_distributed_sampler": False,
                # LastCheckpoint replaces Lightning's per-epoch ModelCheckpoint (1-2 ms a save).
                "enable_checkpointing": False,
                "plugins": [{"class_path": "lit_linreg.checkpoint.AtomicCheckpointIO"}],
                "callbacks": [PredictionWriter()],
            },
            args=args,
            run=run,
        )
    except UsageError as err:
        raise SystemExit(f"error: {err}") from None
