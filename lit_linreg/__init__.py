"""lit_linreg: how much does each column weigh? Linear regression by SGD, as a PyTorch Lightning project."""

__version__ = "0.1.0"
