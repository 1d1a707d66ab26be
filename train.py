"""Fit, validate, test or predict: ``python train.py fit --help``."""

from lit_linreg.cli import cli_main

if __name__ == "__main__":
    cli_main()
