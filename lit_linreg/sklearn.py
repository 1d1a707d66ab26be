"""``LinearRegressor``: lit_linreg as a scikit-learn estimator (``pip install lit-linreg[sklearn]``).

It fits by ``lit_linreg.fit`` — the same Lightning run as ``train.py fit`` — so it can stand in a ``Pipeline``,
``cross_val_score`` or ``GridSearchCV``. ``coef_`` and ``intercept_`` are SGD's weights, which ``predict`` uses;
``result_`` is the whole ``Regression`` (the exact optimum, its standard errors and intervals, the verdict).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class LinearRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by minibatch SGD in PyTorch Lightning, with the exact optimum beside it.

    Parameters are those of ``lit_linreg.fit`` that concern the model, SGD and the inference, with its defaults
    (settings chosen from the data); X is all numeric (scikit-learn's encoders come before it in a Pipeline).

    Attributes:
        coef_: SGD's weights, one per column of X.
        intercept_: SGD's bias.
        result_: the ``Regression`` of the fit.
        n_features_in_, feature_names_in_: as every scikit-learn estimator.
    """

    def __init__(
        self,
        loss: Literal["mse", "mae", "huber", "quantile"] = "mse",
        huber_k: float = 1.345,
        quantile: float = 0.5,
        lr: float | None = None,
        lr_schedule: Literal["constant", "linear", "exponential"] = "exponential",
        average_tail: float = 0.25,
        standardize: bool = True,
        precondition: bool = True,
        batch_size: int | None = None,
        max_epochs: int | None = None,
        seed: int = 42,
        optimum: bool = True,
        covariance: Literal["robust", "classical"] = "robust",
        alpha: float = 0.05,
        accelerator: str = "cpu",
    ) -> None:
        self.loss = loss
        self.huber_k = huber_k
        self.quantile = quantile
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.average_tail = average_tail
        self.standardize = standardize
        self.precondition = precondition
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.seed = seed
        self.optimum = optimum
        self.covariance = covariance
        self.alpha = alpha
        self.accelerator = accelerator

    def fit(self, X, y) -> LinearRegressor:
        import pandas as pd

        from lit_linreg.api import fit

        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        names = getattr(self, "feature_names_in_", None)
        columns = [str(n) for n in names] if names is not None else [f"x{j + 1}" for j in range(X.shape[1])]
        target = "y" if "y" not in columns else "target"
        self.result_ = fit((pd.DataFrame(X, columns=columns), y), target, **self.get_params())
        learned = np.asarray(self.result_.learned)
        self.coef_, self.intercept_ = learned[:-1], float(learned[-1])
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_
