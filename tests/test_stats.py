"""The statistics against independent implementations: statsmodels, scipy's HiGHS, numpy, NIST's certified values."""

import math
import re

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from scipy import optimize, stats

from lit_linreg.losses import loss_of
from lit_linreg.stats.analysis import analyse, huber_scale
from lit_linreg.stats.design import check_design
from lit_linreg.stats.moments import Moments
from lit_linreg.stats.optimum import quantile_regression
from lit_linreg.stats.rank_test import MONTE_CARLO_NAME, RANK_TEST_NAME, null_errors
from lit_linreg.stats.rows import DesignRows
from lit_linreg.stats.training import TrainingStatistics
from tests.oracles import (
    assert_inverts_refitted_wild_test,
    assert_inverts_wild_restricted_test,
    bell_mccaffrey_reference,
    huber_fits,
    huber_sandwich_errors,
)


def table(n=400, seed=0, heteroscedastic=False):
    """Columns in very different units and offsets, heavy-tailed noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * [1, 10, 0.01, 1000] + [5, -3, 0, 2e4]
    noise = rng.standard_t(3, n) * (1 + np.abs(x[:, 0] - 5) if heteroscedastic else 1)
    return x, x @ [8.1, 2, 2, 0.004] + 1.1 + noise


def run(x, y, loss, covariance="robust", **kwargs):
    names = [f"x{i}" for i in range(x.shape[1])]
    return analyse(torch.tensor(x), torch.tensor(y), names, loss, covariance_kind=covariance, **kwargs)


def estimates(a):
    """statsmodels' order: the constant first."""
    return np.array([a.bias.estimate, *[c.estimate for c in a.weights]])


def errors(a):
    return np.array([a.bias.std_error, *[c.std_error for c in a.weights]])


@pytest.mark.parametrize(("covariance", "cov_type"), [("robust", "HC2"), ("classical", "nonrobust")])
def test_least_squares_equals_statsmodels_ols(covariance, cov_type):
    x, y = table(heteroscedastic=True)
    ours = run(x, y, "mse", covariance)
    theirs = sm.OLS(y, sm.add_constant(x)).fit(cov_type=cov_type)
    # The same estimator: 1.7e-10 apart on the estimates (statsmodels solves on the raw columns, one offset by 2e4,
    # which costs it digits; we solve on standardized ones) and 7e-13 on the standard errors.
    np.testing.assert_allclose(estimates(ours), theirs.params, rtol=1e-8)
    np.testing.assert_allclose(errors(ours), theirs.bse, rtol=1e-10)
    np.testing.assert_allclose(ours.fit_measure, theirs.rsquared, rtol=1e-9)
    assert ours.df_resid == theirs.df_resid


def t_intervals(a, dfs, alpha=0.05):
    """(p-values, lower, upper) in statsmodels' order from the estimates, standard errors and each one's df."""
    est, se = estimates(a), errors(a)
    half = stats.t.ppf(1 - alpha / 2, dfs) * se
    return 2 * stats.t.sf(np.abs(est / se), dfs), est - half, est + half


def mad_scale(residual):
    """The MAD scale of residuals, as RLM's and Huber's threshold use it: median |r| over Φ⁻¹(3/4)."""
    return float(np.median(np.abs(residual)) / stats.norm.ppf(0.75))


def df_params(a):
    """Bell and McCaffrey's degrees of freedom in statsmodels' order: the constant first."""
    return np.array([a.df_params[-1], *a.df_params[:-1]], dtype=float)


def test_robust_least_squares_t_has_bell_mccaffreys_degrees_of_freedom():
    """HC2's t with Bell and McCaffrey's degrees of freedom, each coefficient's, equal to the eigenvalue form
    restated in numpy on a small wide design."""
    x, y = table(24, 3, heteroscedastic=True)
    ours = run(x, y, "mse", wild_bootstrap=False)
    dfs = bell_mccaffrey_reference(sm.add_constant(x))
    np.testing.assert_allclose(df_params(ours), dfs, rtol=1e-9)
    assert all(1 < df < ours.df_resid for df in dfs)  # fewer than n - p: the correction is not idle here
    p_values, lower, upper = t_intervals(ours, dfs, 0.05)
    coefficients = [ours.bias, *ours.weights]
    np.testing.assert_allclose([c.p_value for c in coefficients], p_values, rtol=1e-9)
    np.testing.assert_allclose([[c.low, c.high] for c in coefficients], np.c_[lower, upper], rtol=1e-9)
    assert ours.interval.startswith("Student's t, Bell-McCaffrey degrees of freedom (")


def test_past_its_budget_bell_mccaffrey_gives_way_to_n_minus_p_and_says_so(monkeypatch):
    import lit_linreg.stats.inference as inference

    x, y = table(24, 3, heteroscedastic=True)
    monkeypatch.setattr(inference, "BELL_MCCAFFREY_MAX_WORK", 3 * 24 * 5 * 5**2 - 1)  # one multiply-add short
    ours = run(x, y, "mse", wild_bootstrap=False)
    assert ours.df_params is None
    assert ours.interval == "Student's t, 19 degrees of freedom (Bell-McCaffrey's skipped: too many rows x columns³)"
    p_values, lower, upper = t_intervals(ours, np.full(5, 19))
    coefficients = [ours.bias, *ours.weights]
    np.testing.assert_allclose([c.p_value for c in coefficients], p_values, rtol=1e-9)
    np.testing.assert_allclose([[c.low, c.high] for c in coefficients], np.c_[lower, upper], rtol=1e-9)
    monkeypatch.setattr(inference, "BELL_MCCAFFREY_MAX_WORK", 3 * 24 * 5 * 5**2)  # exactly the budget: computed
    assert run(x, y, "mse", wild_bootstrap=False).df_params is not None


@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize(
    ("design", "rtol"),
    # A column that nearly singles out one row (its leverage is 1 - 1.3e-9, so the weight 1/(1 - h) is known to
    # about 1e-16/1.3e-9 = 1e-7 relative in either computation; they agreed to 5e-8) and two columns 1e-3 apart
    # (condition number 2.2e3: numpy's inverse of the raw design is good to ~cond² · 1e-16; they agreed to 7e-10).
    [("one-hot", 1e-6), ("collinear", 1e-8)],
)
def test_bell_mccaffrey_keeps_its_digits_where_leverage_nears_1_or_columns_nearly_coincide(design, rtol, loss):
    rng = np.random.default_rng(5)
    n = 24
    if design == "one-hot":
        x = np.c_[rng.normal(size=(n, 2)), (np.arange(n) == 3) + 1e-5 * rng.normal(size=n)]
    else:
        z = rng.normal(size=n)
        x = np.c_[z, z + 1e-3 * rng.normal(size=n), rng.normal(size=n)]
    y = x[:, 0] + rng.standard_t(3, n)
    ours = run(x, y, loss, wild_bootstrap=False)
    assert all(c.fitted for c in ours.weights)
    design_matrix = sm.add_constant(x)
    slope = None
    if loss == "huber":
        r = y - design_matrix @ estimates(ours)
        slope = (np.abs(r) <= 1.345 * mad_scale(r)).astype(float)
        assert 0 < slope.sum() < n
    dfs = bell_mccaffrey_reference(design_matrix, slope)
    np.testing.assert_allclose(df_params(ours), dfs, rtol=rtol)
    assert np.all((0 < dfs) & (dfs <= ours.df_resid))


def test_bell_mccaffrey_is_welchs_degrees_of_freedom_for_two_groups():
    """For a difference of two means, HC2 is s0²/n0 + s1²/n1 and Bell and McCaffrey's degrees of freedom under
    equal variances are the Welch-Satterthwaite ones: (1/n0 + 1/n1)² / (1/(n0²(n0-1)) + 1/(n1²(n1-1)))."""
    rng = np.random.default_rng(2)
    n0, n1 = 5, 17
    group = np.r_[np.zeros(n0), np.ones(n1)]
    y = 2 + group + rng.normal(size=n0 + n1)
    ours = run(group[:, None], y, "mse", wild_bootstrap=False)
    welch = (1 / n0 + 1 / n1) ** 2 / (1 / (n0**2 * (n0 - 1)) + 1 / (n1**2 * (n1 - 1)))
    assert ours.df_params[0] == pytest.approx(welch, rel=1e-10)
    assert ours.df_params[1] == pytest.approx(n0 - 1, rel=1e-10)  # the bias is group 0's mean: s0²/n0, n0 - 1
    variances = y[:n0].var(ddof=1) / n0 + y[n0:].var(ddof=1) / n1
    assert ours.weights[0].std_error == pytest.approx(np.sqrt(variances), rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_least_squares_intervals_invert_the_wild_restricted_bootstrap_test(weighted):
    """Each end is where the wild restricted bootstrap test, restated with numpy (a refit a draw, on the same
    weights v), starts to reject; the p-values are its counts at 0. Columns in very different units and offsets,
    the noise's spread growing with one of them; with case weights, on the rows times √w (weighted least squares)."""
    from lit_linreg.stats.wild_bootstrap import webb_weights, wild_bootstrap_draws

    x, y = table(24, 3, heteroscedastic=True)
    w = np.random.default_rng(4).uniform(0.2, 3, len(y)) if weighted else np.ones(len(y))
    ours = run(x, y, "mse", case_weights=torch.tensor(w) if weighted else None)
    draws = wild_bootstrap_draws(0.05)
    assert draws == 999 and ours.interval.startswith("inversion of the wild restricted bootstrap test of HC2's t")
    v = webb_weights(len(y), draws, seed=0).numpy()
    design, target = np.c_[x, np.ones(len(y))] * np.sqrt(w)[:, None], y * np.sqrt(w)  # the bias last, as ours
    coefficients = [*ours.weights, ours.bias]
    low, high, p, se = (
        np.array([getattr(c, name) for c in coefficients]) for name in ("low", "high", "p_value", "std_error")
    )
    assert_inverts_wild_restricted_test(design, target, low, high, p, se, 0.05, v)
    assert min(c.p_value for c in [*ours.weights, ours.bias]) < 0.05 < max(c.p_value for c in ours.weights)


@pytest.mark.parametrize("weighted", [False, True])
def test_huber_intervals_on_a_small_wide_table_invert_the_refitted_wild_bootstrap_test(weighted):
    """On 16 rows for 4 parameters, each end is where the wild restricted bootstrap test with every draw refitted by
    Huber's M-estimate, restated with numpy (IRLS to a step of 1e-13 a draw, on the same weights v), starts to
    reject, 6e-4 standard errors either side (each end is the middle of a bracket at most 1e-3 wide, the search's
    precision); the p-values are its counts at 0, some below 0.05 and some above. Columns in
    very different units and offsets; with case weights, on the rows times √w (as R's rlm takes them)."""
    from lit_linreg.stats.rank_test import monte_carlo_draws
    from lit_linreg.stats.wild_bootstrap import webb_weights

    x, y = table(16, 2)
    x = x[:, :3]
    w = np.random.default_rng(4).uniform(0.2, 3, len(y)) if weighted else np.ones(len(y))
    ours = run(x, y, "huber", case_weights=torch.tensor(w) if weighted else None, refitted_bootstrap=True)
    draws = monte_carlo_draws(0.05)
    assert draws == 199 and ours.interval.startswith("inversion of the wild restricted bootstrap test of the sandwich")
    design, target = np.c_[x, np.ones(len(y))] * np.sqrt(w)[:, None], y * np.sqrt(w)  # the bias last, as ours
    coefficients = [*ours.weights, ours.bias]
    low, high, p, se = (
        np.array([getattr(c, name) for c in coefficients]) for name in ("low", "high", "p_value", "std_error")
    )
    # The observed t's standard errors are the oracle's sandwich at its own fit (4e-9 apart with case weights: the
    # oracle's IRLS stops at a step of 1e-13, and ours is the fixed point's linear solution).
    beta, scale = huber_fits(design, target)
    np.testing.assert_allclose(se, huber_sandwich_errors(design, target, beta, scale)[0], rtol=1e-8)
    v = webb_weights(len(y), draws, seed=0).numpy()
    assert_inverts_refitted_wild_test(design, target, low, high, p, se, 0.05, v, margin=6e-4)
    assert np.all(np.isfinite(low) & np.isfinite(high)) and min(p) < 0.05 < max(p)


def test_huber_keeps_bell_mccaffreys_t_past_five_rows_a_parameter_or_the_refits_budget(monkeypatch):
    import lit_linreg.stats.huber_bootstrap as huber_bootstrap

    x, y = table(16, 2)
    assert run(x[:, :3], y, "huber").interval.startswith("inversion of the wild restricted bootstrap test of the sand")
    student = run(x[:, :3], y, "huber", refitted_bootstrap=False)
    assert student.interval.startswith("Student's t, Bell-McCaffrey degrees of freedom")
    monkeypatch.setattr(huber_bootstrap, "HUBER_BOOTSTRAP_WORK", 16 * 4**3 * 199 - 1)  # one short
    ours = run(x[:, :3], y, "huber", refitted_bootstrap=True)
    assert (
        ours.interval == student.interval + " (the refitted wild bootstrap's draws skipped: too many rows x columns³)"
    )
    for mine, theirs in zip([*ours.weights, ours.bias], [*student.weights, student.bias], strict=True):
        # Two runs of the same analysis: Huber's estimate is the fixed point's linear solution, the same to rounding
        # (before, the iteration's stopping rule let it move by 2.5e-10 in one run in five).
        assert (mine.low, mine.high, mine.p_value) == pytest.approx(
            (theirs.low, theirs.high, theirs.p_value), rel=1e-12
        )
    monkeypatch.setattr(huber_bootstrap, "HUBER_BOOTSTRAP_WORK", 16 * 4**3 * 199)  # exactly the budget: refitted
    assert run(x[:, :3], y, "huber", refitted_bootstrap=True).interval.startswith(
        "inversion of the wild restricted bootstrap test"
    )
    # 21 rows for 4 parameters is more than 5 a parameter: Bell and McCaffrey's t, as a choice, not a skip.
    x, y = table(21, 2)
    assert run(x[:, :3], y, "huber").interval == run(x[:, :3], y, "huber", refitted_bootstrap=False).interval


def test_huber_keeps_bell_mccaffreys_t_where_no_refitted_draw_can_be_made():
    """Bell and McCaffrey's t, named with the reason, where the rows are streamed from disk or the fit has nothing
    to scale by (more than half the rows fitted exactly: a MAD scale of 0); and, as a choice, for the intercept
    alone, which leaves its test no restricted fit."""
    x, y = table(16, 2)
    student = run(x[:, :3], y, "huber", refitted_bootstrap=False)
    streamed = run(x[:, :3], y, "huber", refitted_bootstrap=True, materialize=False)
    assert (
        streamed.interval
        == student.interval + " (the refitted wild bootstrap's draws skipped: the rows are not in memory)"
    )
    x = np.array([[0.0], [0], [0], [1], [1], [1], [1], [1]])
    exact = run(x, np.array([1, 1.5, 0.7, 2, 2, 2, 2, 5]), "huber", refitted_bootstrap=True)
    assert exact.interval.endswith(
        "(the refitted wild bootstrap's draws skipped: more than half the rows fitted exactly (a MAD scale of 0))"
    )
    constant = np.ones((5, 1))  # dropped: the intercept is the only parameter
    y = np.array([1.0, 2.5, 0.3, 4, 2])
    alone = run(constant, y, "huber", refitted_bootstrap=True)
    assert alone.n_parameters == 1 and alone.interval == run(constant, y, "huber", refitted_bootstrap=False).interval


def test_huber_refits_short_of_the_fixed_point_or_without_a_scale_are_counted_in_the_intervals_name(monkeypatch):
    """Refits still short of the joint fixed point after the iterations allowed (one here, 500 by default) are used
    as their last step left them, and refits whose MAD scale is 0 (most of a draw's rows fitted exactly; made so
    here for each batch's first) have no t; the interval's name counts each, of all the refits."""
    import lit_linreg.stats.huber_bootstrap as huber_bootstrap
    import lit_linreg.stats.huber_fixed_point as huber_fixed_point

    x, y = table(16, 2)
    settled = run(x[:, :3], y, "huber", refitted_bootstrap=True)
    monkeypatch.setattr(huber_fixed_point, "MAX_ITERATIONS", 1)
    short = run(x[:, :3], y, "huber", refitted_bootstrap=True)
    caveat = re.fullmatch(
        r"([\d,]+) short of the fixed point after 1 steps, of ([\d,]+) refits\)",
        short.interval[len(settled.interval) + 2 :],
    )
    assert short.interval.startswith(settled.interval + " (") and caveat, short.interval
    unsettled, fits = (int(v.replace(",", "")) for v in caveat.groups())
    assert 0 < unsettled < fits and fits % 200 == 0  # a value tried: its restricted fit and 199 draws
    monkeypatch.undo()

    def first_without_a_scale(*args, **kwargs):  # as m_estimates leaves such a fit: β and scale NaN
        beta, scale, settled = huber_fixed_point.m_estimates(*args, **kwargs)
        beta[0], scale[0], settled[0] = math.nan, math.nan, False
        return beta, scale, settled

    monkeypatch.setattr(huber_bootstrap, "m_estimates", first_without_a_scale)
    degenerate = run(x[:, :3], y, "huber", refitted_bootstrap=True)
    caveat = re.fullmatch(
        r"([\d,]+) with a MAD scale of 0, of ([\d,]+) refits\)", degenerate.interval[len(settled.interval) + 2 :]
    )
    assert degenerate.interval.startswith(settled.interval + " (") and caveat, degenerate.interval
    batches, fits = (int(v.replace(",", "")) for v in caveat.groups())
    assert 0 < batches < fits / 200


def test_past_its_budget_the_wild_bootstrap_gives_way_to_bell_mccaffrey_and_says_so(monkeypatch):
    import lit_linreg.stats.wild_bootstrap as wild_bootstrap

    x, y = table(24, 3, heteroscedastic=True)
    student = run(x, y, "mse", wild_bootstrap=False)
    monkeypatch.setattr(wild_bootstrap, "WILD_BOOTSTRAP_WORK", 24 * 5**2 * 999 - 1)  # one multiply-add short
    ours = run(x, y, "mse")
    assert ours.interval == student.interval + " (the wild bootstrap's draws skipped: too many rows x columns²)"
    for mine, theirs in zip([*ours.weights, ours.bias], [*student.weights, student.bias], strict=True):
        # Two runs of the same analysis: equal but for the last bit of a threaded matrix product's sums.
        assert (mine.low, mine.high, mine.p_value) == pytest.approx(
            (theirs.low, theirs.high, theirs.p_value), rel=1e-13
        )
    monkeypatch.setattr(wild_bootstrap, "WILD_BOOTSTRAP_WORK", 24 * 5**2 * 999)  # exactly the budget: drawn
    assert run(x, y, "mse").interval.startswith("inversion of the wild restricted bootstrap test")
    # Within the budget but streamed from disk: the draws need the rows in memory, and the name says so.
    streamed = run(x, y, "mse", materialize=False)
    assert streamed.interval == student.interval + " (the wild bootstrap's draws skipped: the rows are not in memory)"


def test_median_regression_equals_quantreg_and_its_iid_errors():
    # QuantReg's IRLS converges on columns of unit scale (on the wild scales of ``table`` it does not, while the
    # exact LP test below still holds there).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = x @ [8.1, 2, 2, 4] + 1.1 + rng.standard_t(3, 200)
    ours = run(x, y, "mae", "classical")
    theirs = sm.QuantReg(y, sm.add_constant(x)).fit(q=0.5, vcov="iid", p_tol=1e-12, max_iter=5_000)
    assert theirs.iterations < 5_000
    # QuantReg's IRLS stops near the LP's vertex (2.6e-7 from ours on the estimates, 1.9e-7 on the errors, whose
    # iid sparsity uses its residuals); ours is the vertex itself (the LP test below).
    np.testing.assert_allclose(estimates(ours), theirs.params, rtol=1e-6)
    np.testing.assert_allclose(errors(ours), theirs.bse, rtol=1e-6)


@pytest.mark.parametrize("tau", [0.1, 0.25, 0.9])
def test_quantile_regression_equals_quantreg_at_its_quantile(tau):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3))
    y = x @ [1.0, -2.0, 0.5] + 3 + rng.standard_t(3, 300) * (1 + 0.5 * np.abs(x[:, 0]))
    ours = run(x, y, "quantile", "classical", quantile=tau)
    theirs = sm.QuantReg(y, sm.add_constant(x)).fit(q=tau, vcov="iid", p_tol=1e-12, max_iter=5_000)
    assert theirs.iterations < 5_000 and f"τ = {tau:g}" in ours.method
    # QuantReg's IRLS stops about 1e-6 from the LP's vertex (1.0e-6 relative at τ = 0.1), ours is the vertex
    # (next test: 1e-9 from HiGHS); its iid sparsity is a kernel density of its own residuals, so its errors
    # inherit that distance.
    np.testing.assert_allclose(estimates(ours), theirs.params, rtol=2e-6)
    np.testing.assert_allclose(errors(ours), theirs.bse, rtol=3e-6)

    # Koenker and Machado's R1 against the best constant: an order statistic of y minimises Σρ_τ(y - c).
    def pinball(u):
        return np.sum(u * (tau - (u < 0)))

    best_constant = min(pinball(y - c) for c in y)
    residual = y - sm.add_constant(x) @ estimates(ours)
    assert ours.fit_measure == pytest.approx(1 - pinball(residual) / best_constant, rel=1e-12)


@pytest.mark.parametrize("tau", [0.1, 0.75])
def test_quantile_regression_is_the_exact_lp_optimum(tau):
    """The primal LP min Σ τu⁺ + (1-τ)u⁻ s.t. Xβ + u⁺ - u⁻ = y, solved by HiGHS, on wild column scales."""
    for n, seed, ties in ((300, 1, False), (120, 2, True)):
        x, y = table(n, seed)
        if ties:
            y = np.round(y / 20) * 20  # a target with few distinct values: a degenerate LP
        design = np.c_[x, np.ones(n)]
        p = design.shape[1]
        cost = np.r_[np.zeros(p), np.full(n, tau), np.full(n, 1 - tau)]
        highs = optimize.linprog(
            cost, A_eq=np.c_[design, np.eye(n), -np.eye(n)], b_eq=y, bounds=[(None, None)] * p + [(0, None)] * 2 * n
        )
        ours = run(x, y, "quantile", quantile=tau)
        ours_coef = np.r_[[c.estimate for c in ours.weights], ours.bias.estimate]
        ours_loss = cost[p:] @ np.r_[np.maximum(y - design @ ours_coef, 0), np.maximum(design @ ours_coef - y, 0)]
        assert ours_loss <= highs.fun * (1 + 1e-12)
        if not ties:  # continuous data: the optimum is unique
            np.testing.assert_allclose(ours_coef, highs.x[:p], rtol=1e-9)


def test_least_absolute_deviations_is_the_exact_lp_optimum():
    """Against HiGHS's dual simplex on the same LP (exact to float precision), tables with heavy ties included."""
    for n, seed, ties in ((300, 1, False), (2000, 2, False), (800, 3, True)):
        x, y = table(n, seed)
        if ties:
            y = np.round(y / 20) * 20  # a target with few distinct values: a degenerate LP
        design = np.c_[x, np.ones(n)]
        highs = optimize.linprog(-y, A_eq=design.T, b_eq=np.zeros(5), bounds=(-1 / n, 1 / n), method="highs-ds")
        exact = -highs.eqlin.marginals
        ours = run(x, y, "mae")
        ours_coef = np.r_[[c.estimate for c in ours.weights], ours.bias.estimate]
        ours_loss, exact_loss = (np.abs(design @ c - y).mean() for c in (ours_coef, exact))
        assert ours_loss <= exact_loss * (1 + 1e-12)


@pytest.mark.parametrize("seed, n, noise", [(1, 40, "t3"), (5, 20, "t3"), (12, 101, "counts"), (25, 40, "normal")])
def test_least_absolute_deviations_with_a_balanced_binary_column_is_the_lp_optimum(seed, n, noise):
    """A 0/1 column alternating row by row can make the rows fitted exactly at a vertex dependent (a singular
    basis): the solver must still finish at the optimum. These seeds are tables on which it once raised."""
    rng = np.random.default_rng(seed)
    x = np.c_[rng.normal(size=n), np.arange(n) % 2]
    error = {"t3": rng.standard_t(3, n), "counts": rng.integers(0, 3, n), "normal": rng.normal(size=n)}[noise]
    y = np.round(1 + 2 * x[:, 0] + 3 * x[:, 1] + error, 0 if noise == "counts" else 12)
    design = np.c_[x, np.ones(n)]
    highs = optimize.linprog(-y, A_eq=design.T, b_eq=np.zeros(3), bounds=(-1 / n, 1 / n), method="highs-ds")
    ours = run(x, y, "mae")
    ours_coef = np.r_[[c.estimate for c in ours.weights], ours.bias.estimate]
    ours_loss, exact_loss = (np.abs(design @ c - y).mean() for c in (ours_coef, -highs.eqlin.marginals))
    assert ours_loss <= exact_loss * (1 + 1e-12)


def test_optima_are_optimal_for_every_loss():
    x, y = table(200, 5)
    design = np.c_[x, np.ones(200)]
    rng = np.random.default_rng(0)
    for loss in ("mae", "mse", "huber"):
        a = run(x, y, loss)
        coef = np.r_[[c.estimate for c in a.weights], a.bias.estimate]
        # Huber's at the scale of the fit: the MAD of its residuals (RLM's fixed point), in the target's units.
        mad = mad_scale(design @ coef - y)

        def mean(c, loss=loss, mad=mad):
            r = torch.tensor(design @ c - y)
            return float(loss_of(loss, 1.345, mad).elementwise(r).mean())

        scale = np.r_[1 / x.std(0), 1.0] * 1e-4
        nearby = [mean(coef + scale * rng.normal(size=5)) for _ in range(200)]
        assert min(nearby) >= mean(coef) - 1e-12, loss


@pytest.mark.parametrize("weighted", [False, True])
def test_huber_estimate_solves_its_estimating_equations_to_rounding(weighted, monkeypatch):
    """Huber's estimate with its MAD scale is the joint fixed point itself: Σψ(r_i)·w_i·[x_i, 1] = 0 with ψ clipped
    at k times MAD(r)/Φ⁻¹(3/4) (residuals times √w with case weights), to 1e-12 of its terms, where the alternation
    of Newton and the MAD, which stops when the scale moves by less than 1e-13, alone stopped 4e-10 short (without
    weights; with them it stopped more than 1e-12 short on earlier machines but 6.6e-13 on another, by the luck of
    rounding, so it is not asked to fall short there)."""
    import lit_linreg.stats.optimum as optimum

    x, y = table(30)
    w = np.random.default_rng(5).uniform(0.2, 3, len(y)) if weighted else np.ones(len(y))

    def balance(a):
        r = (y - x @ estimates(a)[1:] - estimates(a)[0]) * np.sqrt(w)
        cut = 1.345 * np.median(np.abs(r)) / stats.norm.ppf(0.75)
        rows = np.c_[np.ones(len(y)), x] * np.sqrt(w)[:, None]
        return np.max(np.abs(rows.T @ np.clip(r, -cut, cut)) / (np.abs(rows).T @ np.abs(np.clip(r, -cut, cut))))

    weights = torch.tensor(w) if weighted else None
    assert balance(run(x, y, "huber", "classical", case_weights=weights)) < 1e-12
    if not weighted:
        monkeypatch.setattr(optimum, "m_estimates", lambda *a, **k: (None, None, torch.tensor([False])))
        assert balance(run(x, y, "huber", "classical")) > 1e-12  # the alternation alone


def test_huber_is_statsmodels_rlm_with_its_defaults_and_h1_errors():
    """RLM(M=HuberT()).fit() as it comes: k = 1.345, the MAD scale re-estimated as it iterates, H1 errors. RLM
    stops when its deviance changes by less than 1e-8; iterated on (tol 1e-13) it reaches our fixed point."""
    x, y = table()
    ours = run(x, y, "huber", "classical")
    model = sm.RLM(y, sm.add_constant(x), M=sm.robust.norms.HuberT())
    # Iterated on, the two agree to 1.2e-9 (the intercept): statsmodels solves on the raw columns, one offset by
    # 2e4, whose conditioning leaves it about that much float error; 1e-8 is the bound that error allows.
    for theirs, rtol in ((model.fit(), 1e-6), (model.fit(tol=1e-13, maxiter=1000), 1e-8)):
        np.testing.assert_allclose(estimates(ours), theirs.params, rtol=rtol)
        np.testing.assert_allclose(errors(ours), theirs.bse, rtol=rtol)
        printed = float(re.search(r"MAD scale ([0-9.e+-]+)", " ".join(ours.notes)).group(1))
        assert printed == pytest.approx(theirs.scale, rel=1e-4)  # as the note prints it: 5 significant digits
    # The scale SGD trains at (its threshold is k times it) comes from the same fit, before training.
    x_, y_ = torch.tensor(x), torch.tensor(y)
    pilot = huber_scale(x_, y_, TrainingStatistics.of(x_, y_, [f"x{i}" for i in range(4)]), 1.345)
    assert pilot == pytest.approx(theirs.scale, rel=1e-9)


def test_robust_huber_errors_are_hc2_carried_over_to_the_m_estimator():
    """B⁻¹ [Σψ²/(1-h) x xᵀ] B⁻¹ with B = Σψ' x xᵀ and h = ψ' xᵀB⁻¹x, restated in numpy at the fitted scale, its t
    on Bell and McCaffrey's degrees of freedom through the linearisation (the eigenvalue form); with a threshold no
    residual reaches, Huber's estimate is least squares and these errors are statsmodels' HC2."""
    x, y = table(300, 8, heteroscedastic=True)
    ours = run(x, y, "huber")
    design = sm.add_constant(x)
    r = y - design @ estimates(ours)
    delta = 1.345 * mad_scale(r)
    psi, slope = np.clip(r, -delta, delta), (np.abs(r) <= delta).astype(float)
    bread_inverse = np.linalg.inv((design * slope[:, None]).T @ design)
    leverage = slope * np.einsum("ij,jk,ik->i", design, bread_inverse, design)
    meat = (design * (psi**2 / (1 - leverage))[:, None]).T @ design
    np.testing.assert_allclose(errors(ours), np.sqrt(np.diag(bread_inverse @ meat @ bread_inverse)), rtol=1e-8)
    assert "HC2-type M-estimator sandwich" == ours.covariance
    dfs = bell_mccaffrey_reference(design, slope)
    np.testing.assert_allclose(df_params(ours), dfs, rtol=1e-8)
    assert 0 < slope.sum() < len(slope)  # some rows beyond the threshold: S is not the identity
    p_values, lower, upper = t_intervals(ours, dfs)
    coefficients = [ours.bias, *ours.weights]
    np.testing.assert_allclose([c.p_value for c in coefficients], p_values, rtol=1e-8)
    np.testing.assert_allclose([[c.low, c.high] for c in coefficients], np.c_[lower, upper], rtol=1e-8)
    wide = run(x, y, "huber", huber_k=1e6)
    np.testing.assert_allclose(df_params(wide), df_params(run(x, y, "mse", wild_bootstrap=False)), rtol=1e-9)
    ols = sm.OLS(y, design).fit(cov_type="HC2")
    np.testing.assert_allclose(estimates(wide), ols.params, rtol=1e-8)
    np.testing.assert_allclose(errors(wide), ols.bse, rtol=1e-8)


@pytest.mark.parametrize(("loss", "tau"), [("mae", 0.5), ("quantile", 0.9)])
def test_robust_quantile_errors_are_hendricks_koenkers_sandwich(loss, tau):
    """Restated with numpy and HiGHS's LP for the fits at τ ± h: τ(1-τ) H⁻¹XᵀXH⁻¹, H = Σ f x xᵀ, f = 2h / xᵀΔβ,
    with R's Hall-Sheather h (``bandwidth.rq``)."""
    x, y = table(600, 7, heteroscedastic=True)
    ours = run(x, y, loss, quantile=tau)
    design = sm.add_constant(x)
    n, p = design.shape
    z = stats.norm.ppf(tau)
    h = n ** (-1 / 3) * stats.norm.ppf(0.975) ** (2 / 3) * (1.5 * stats.norm.pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3)

    def exact_fit(q):
        cost = np.r_[np.zeros(p), np.full(n, q), np.full(n, 1 - q)]
        bounds = [(None, None)] * p + [(0, None)] * 2 * n
        return optimize.linprog(cost, A_eq=np.c_[design, np.eye(n), -np.eye(n)], b_eq=y, bounds=bounds).x[:p]

    f = np.maximum(0, 2 * h / (design @ (exact_fit(tau + h) - exact_fit(tau - h))))
    h_inv = np.linalg.inv((design * f[:, None]).T @ design)
    cov = tau * (1 - tau) * h_inv @ design.T @ design @ h_inv
    # 1.6e-9 apart: R's eps (3.7e-11, subtracted from each difference) is in the target's standard deviations here.
    np.testing.assert_allclose(errors(ours), np.sqrt(np.diag(cov)), rtol=1e-8)
    assert ours.covariance.startswith("Hendricks-Koenker sandwich")


def rank_score_statistic(design, y, j, tau, b):
    """The regression rank-score test of θ_j = b (Gutenbrunner et al., 1993), restated with HiGHS's LP for the
    rank scores: max (y - b·x_j)ᵀa s.t. Zᵀa = (1 - τ)Zᵀ1, 0 <= a <= 1, Z the other columns."""
    others, column = np.delete(design, j, 1), design[:, j]
    residual = column - others @ np.linalg.lstsq(others, column, rcond=None)[0]
    scores = optimize.linprog(-(y - b * column), A_eq=others.T, b_eq=(1 - tau) * others.sum(0), bounds=(0, 1)).x
    return residual @ (scores - (1 - tau)) / np.sqrt(tau * (1 - tau) * residual @ residual)


@pytest.mark.parametrize(
    ("loss", "tau", "weighted", "offset", "cutoff"),
    [
        ("mae", 0.5, False, 0.0, "monte carlo"),
        ("quantile", 0.25, True, 0.0, "monte carlo"),
        ("mae", 0.5, False, 1e6, "normal"),
    ],
)
def test_quantile_intervals_below_1001_rows_invert_the_rank_score_test(loss, tau, weighted, offset, cutoff):
    """R's summary.rq default: {b : |T(b)| <= c}. The Monte Carlo cutoff c is the 190th smallest of 199 |T|'s drawn
    with normal errors whose τ-quantile is 0 (times the case weights) and the p-value (1 + #{|T_b| >= |T(0)|}) /
    200, each T restated above; the normal's is z. Each end is where the test starts to reject, within the 4e-3
    standard errors the search promises; T(0) and the draws to 1e-6 (the interior point's rank scores are accurate
    to its 1e-9 duality gap). Columns in wildly different units test the map to the table's units, and a column at
    1e6 ± 1 the search's numerics (solved on the raw design it missed by 5 times the promised precision); case
    weights multiply the rows as R's rq(weights =) does."""
    x, y = table(60, seed=4)
    x[:, 0] += offset
    case_weights = np.random.default_rng(5).uniform(0.2, 3, 60) if weighted else np.ones(60)
    weights = torch.tensor(case_weights) if weighted else None
    ours = run(x, y, loss, quantile=tau, case_weights=weights, monte_carlo_cutoff=cutoff == "monte carlo", seed=3)
    design, target = sm.add_constant(x) * case_weights[:, None], y * case_weights
    if cutoff == "normal":
        assert ours.interval == RANK_TEST_NAME
    else:
        assert ours.interval == MONTE_CARLO_NAME.format(draws=199)
        errors = (null_errors(60, 199, seed=3).numpy() - stats.norm.ppf(tau)) * case_weights
    for j, c in enumerate([ours.bias, *ours.weights]):
        at_zero = rank_score_statistic(design, target, j, tau, 0.0)
        if cutoff == "normal":
            critical, p_value = stats.norm.ppf(0.975), 2 * stats.norm.sf(abs(at_zero))
        else:
            null = np.abs([rank_score_statistic(design, e, j, tau, 0.0) for e in errors])
            critical, p_value = np.sort(null)[189], (1 + (null >= abs(at_zero)).sum()) / 200
        margin = 4e-3 * c.std_error
        for end, outwards in ((c.low, -1), (c.high, 1)):
            assert abs(rank_score_statistic(design, target, j, tau, end - outwards * margin)) <= critical
            assert abs(rank_score_statistic(design, target, j, tau, end + outwards * margin)) > critical
        assert c.p_value == pytest.approx(p_value, abs=1e-6)
        assert c.low < c.estimate < c.high


def test_past_its_budget_the_rank_test_draws_give_way_to_the_normal_cutoff(monkeypatch):
    """199 draws x 5 parameters x 60 rows x 4 other columns: one number more than the budget, and the draws are
    skipped, named so, the intervals and p-values the normal cutoff's; within it, they are drawn."""
    from lit_linreg.stats import rank_test

    x, y = table(60, seed=4)
    normal = run(x, y, "mae", monte_carlo_cutoff=False)
    monkeypatch.setattr(rank_test, "MONTE_CARLO_NUMBERS", 199 * 5 * 60 * 4 - 1)
    skipped = run(x, y, "mae")
    assert skipped.interval == RANK_TEST_NAME + " (Monte Carlo's draws skipped: too many rows x columns²)"
    for ours, theirs in zip([skipped.bias, *skipped.weights], [normal.bias, *normal.weights], strict=True):
        assert (ours.low, ours.high, ours.p_value) == (theirs.low, theirs.high, theirs.p_value)
    monkeypatch.setattr(rank_test, "MONTE_CARLO_NUMBERS", 199 * 5 * 60 * 4)
    assert run(x, y, "mae").interval == MONTE_CARLO_NAME.format(draws=199)


def test_from_1001_rows_quantile_intervals_are_the_sandwichs_student_t():
    """Where R's summary.rq switches to the nid sandwich, so does the default (the rank search's cost grows with
    n·p² an LP)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1001, 1))
    y = x[:, 0] + rng.standard_t(3, 1001)
    assert run(x, y, "mae").interval == "Student's t, 999 degrees of freedom"
    assert run(x[:1000], y[:1000], "mae").interval.startswith("inversion of the rank-score test")


def test_nist_longley_certified_least_squares():
    """NIST StRD's Longley: 6 collinear columns; the certified values have 15 digits."""
    data = sm.datasets.longley.load_pandas().data
    x, y = data.drop(columns="TOTEMP").to_numpy(float), data["TOTEMP"].to_numpy(float)
    certified = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
                 -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]  # fmt: skip
    certified_se = [890420.383607373, 84.9149257747669, 0.334910077722432e-01, 0.488399681651699,
                    0.214274163161675, 0.226073200069370, 455.478499142212]  # fmt: skip
    a = run(x, y, "mse", "classical")
    digits = -np.log10(np.max(np.abs(estimates(a) - certified) / np.abs(certified)))
    assert digits > 9, digits  # float32 reading used to give 4.9; statsmodels gets 10.9
    np.testing.assert_allclose(errors(a), certified_se, rtol=1e-7)


def test_design_check_finds_constant_duplicated_and_collinear_columns():
    rng = np.random.default_rng(3)
    ads = rng.uniform(100, 5000, 300)
    x = np.c_[ads, ads / 1000, np.full(300, 7.0), rng.normal(size=300)]
    names = ["ads", "ads_thousands", "stores", "price"]
    check = check_design(Moments.of(torch.tensor(x), torch.tensor(ads)), names)
    assert check.constant == [2] and check.aliased == {1: [0]} and check.kept == [0, 3]
    assert any("'stores' is constant" in w for w in check.warnings)
    assert any("rank-deficient" in w and "'ads_thousands'" in w and "'ads'" in w for w in check.warnings)
    # Near-duplicates: estimable, but the condition number says so and names the columns.
    near = np.c_[ads, ads + rng.normal(0, 5, 300), rng.normal(size=300)]
    check = check_design(Moments.of(torch.tensor(near), torch.tensor(ads)), ["a", "b", "c"])
    corr = np.corrcoef(near.T)
    expected = np.sqrt(np.linalg.cond(corr))
    assert check.condition_number == pytest.approx(expected, rel=1e-6) and expected > 30
    assert check.collinear == [0, 1] and any("nearly collinear" in w and "'a', 'b'" in w for w in check.warnings)


def test_left_out_columns_have_no_statistics_and_the_rest_match_a_fit_without_them():
    x, y = table(300, 4)
    with_duplicate = np.c_[x, x[:, 1] * 3.0]
    a, b = run(with_duplicate, y, "mse"), run(x, y, "mse")
    assert not a.weights[4].fitted and a.weights[4].estimate == 0 and a.weights[4].std_error is None
    np.testing.assert_allclose(estimates(a)[:5], estimates(b), rtol=1e-9)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (np.random.default_rng(0).normal(size=(50, 2)), np.full(50, 3.0), "the target is constant"),
        (np.random.default_rng(1).normal(size=(3, 2)), np.array([1.0, 2.0, 4.0]), "no residual degrees of freedom"),
        (np.random.default_rng(2).normal(size=(40, 2)), None, "fits every row exactly"),
    ],
)
def test_degenerate_tables_finish_with_a_note(x, y, expected):
    y = x @ [1.5, -2.0] + 3.0 if y is None else y
    for loss in ("mae", "mse", "huber"):
        a = run(x, y, loss)
        assert any(expected in note for note in a.notes), (loss, a.notes)
        assert a.bias.std_error is None


def test_lad_at_a_million_rows_is_exact():
    """The interior point, polished to its vertex, at the size the README quotes (timed in benchmarks/)."""
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(200_000, 5)))
    y = x @ torch.tensor(rng.normal(size=5)) + torch.tensor(rng.standard_t(3, 200_000))
    m = Moments.of(x, y)
    rows = DesignRows(x, y, m, [0, 1, 2, 3, 4])
    beta, iterations = quantile_regression(rows)
    residual = rows.residuals(beta)
    assert int((residual.abs() < 1e-9).sum()) >= rows.p  # a vertex: p rows fitted exactly
    assert iterations < 60


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded():
    x, y = table(150, 9)
    a = run(x, y, "mse", bootstrap=200, seed=3)
    b = run(x, y, "mse", bootstrap=200, seed=3)
    other = run(x, y, "mse", bootstrap=200, seed=4)
    assert "bootstrap" in a.interval
    # The seed fixes the resamples; each refit's QR is threaded BLAS, equal to rounding but not always to the bit.
    for c, d, e in zip(a.weights, b.weights, other.weights, strict=True):
        assert c.low < c.estimate < c.high
        np.testing.assert_allclose([c.low, c.high], [d.low, d.high], rtol=1e-12)
        assert not np.allclose([c.low, c.high], [e.low, e.high], rtol=1e-6)  # another seed, other resamples


@pytest.mark.slow
def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    """A small version of benchmarks/coverage.py: 60 tables of 100 rows x 5 parameters = 300 intervals a loss. The
    median's are tested on the small wide design below, their hardest case: here each median's Monte Carlo cutoff
    (995 interior points of 100 rows) would cost 30 s of the suite's 4 minutes (benchmarks/coverage.py measures
    them at 30, 200 and 2,000 rows)."""
    rng = np.random.default_rng(11)
    covered = {"mse": [], "huber": []}
    truth = np.array([8.1, 2.0, 2.0, 4.0, 1.1])
    for _ in range(60):
        x = rng.normal(size=(100, 4))
        y = x @ truth[:4] + truth[4] + rng.standard_t(3, 100)
        for loss in covered:
            a = run(x, y, loss)
            for c, t in zip([*a.weights, a.bias], truth, strict=True):
                covered[loss].append(c.low <= t <= c.high)
    for loss, hits in covered.items():
        # 300 intervals at 95%: a 99.9% binomial band is [0.907, 0.983].
        assert 0.907 <= np.mean(hits) <= 0.983, (loss, np.mean(hits))


@pytest.mark.slow
def test_intervals_cover_about_95_percent_on_a_small_wide_design():
    """16 rows for 5 parameters, correlated columns, one skewed (``benchmarks/coverage.py --part wide`` in small):
    100 tables x 5 parameters = 500 intervals a loss, whose 99.9% binomial band at 95% is [0.918, 0.982].
    Powell's kernel sandwich covered 87-89% on such designs, Huber's plain sandwich 89% (300 tables a setting).
    Huber's are its sandwich's t on Bell and McCaffrey's degrees of freedom, the default past 5 rows a parameter:
    its default here, the refitted bootstrap test, takes a second and more a table (``benchmarks/coverage.py``
    measures it; the test above checks its ends against a restatement)."""
    from benchmarks.coverage import wide_dataset

    rng = np.random.default_rng(16)
    covered = {"mse": [], "mae": [], "huber": []}
    for _ in range(100):
        x, y, truth = wide_dataset(rng, 16, 5, "t3")
        for loss in covered:
            a = run(x, y, loss, refitted_bootstrap=False)
            covered[loss] += [c.low <= t <= c.high for c, t in zip([a.bias, *a.weights], truth, strict=True)]
    for loss, hits in covered.items():
        assert 0.918 <= np.mean(hits) <= 0.982, (loss, np.mean(hits))
