"""lit_linreg.sklearn.LinearRegressor: scikit-learn's own estimator checks, and a Pipeline under cross-validation."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")

from sklearn.linear_model import LinearRegression  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402
from sklearn.model_selection import KFold, cross_validate  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from lit_linreg.sklearn import LinearRegressor  # noqa: E402
from tests.conftest import DIABETES  # noqa: E402


# One epoch (32 SGD steps): the checks test the estimator's contract (fit, predict, params, input checks, pickling,
# idempotence), not how far SGD gets; their ~50 fits at the default ~2000 steps would take 100 s here.
@parametrize_with_checks([LinearRegressor(max_epochs=1)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
def test_in_a_pipeline_under_cross_validation_it_fits_least_squares():
    table = pd.read_csv(DIABETES)
    x, y = table.drop(columns="progression"), table["progression"]
    folds = KFold(2, shuffle=True, random_state=0)
    pipeline = make_pipeline(StandardScaler().set_output(transform="pandas"), LinearRegressor())  # names kept
    runs = cross_validate(pipeline, x, y, cv=folds, return_estimator=True)
    for pipeline, score, (train, test) in zip(runs["estimator"], runs["test_score"], folds.split(x), strict=True):
        regressor = pipeline[-1]
        result = regressor.result_
        assert list(result.params.index) == [*x.columns, "bias"]  # the DataFrame's names reach the result
        assert result.converged  # SGD within 0.5 standard errors of the exact optimum
        exact = make_pipeline(StandardScaler(), LinearRegression()).fit(x.iloc[train], y.iloc[train])[-1]
        np.testing.assert_allclose(result.params.to_numpy(), [*exact.coef_, exact.intercept_], rtol=1e-8)
        np.testing.assert_array_equal(regressor.coef_, result.sgd_params.to_numpy()[:-1])  # predict uses SGD's
        assert score == r2_score(y.iloc[test], pipeline.predict(x.iloc[test]))
