"""The model and its optimizer: one step by hand, the preconditioner, the schedules, averaging, the units."""

import pytest
import torch

from lit_linreg.model import LinearRegression
from lit_linreg.optim import SGD, scheduled_lr
from lit_linreg.plan import make_plan
from lit_linreg.stats.training import TrainingStatistics


def test_one_step_is_the_hand_computed_update():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16)
    model = LinearRegression(n_features=4, lr=0.05)
    w0, b0 = model.w.detach().clone(), model.b.detach().clone()
    opt = SGD(model.parameters(), lr=0.05)
    opt.zero_grad()
    model.loss(x, y).backward()
    opt.step()
    # d/dw mean|x·w + b - y| = mean(sign(r) x); d/db = mean(sign(r))
    sign = torch.sign(x @ w0 + b0 - y)
    assert torch.allclose(model.w, w0 - 0.05 * (sign[:, None] * x).mean(0), atol=1e-7)
    assert torch.allclose(model.b, b0 - 0.05 * sign.mean(), atol=1e-7)


def test_a_preconditioned_step_multiplies_the_gradient_by_the_matrix():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    matrix = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    opt = SGD([{"params": [w], "preconditioner": matrix}], lr=0.1)
    w.grad = torch.tensor([1.0, -1.0])
    opt.step()
    assert torch.allclose(w.detach(), torch.tensor([1.0, 2.0]) - 0.1 * matrix @ torch.tensor([1.0, -1.0]))


def test_parameters_are_exactly_w_and_b():
    model = LinearRegression(n_features=3)
    assert [name for name, _ in model.named_parameters()] == ["w", "b"]
    assert model.w.shape == (3,) and model.b.shape == ()
    assert model.b.item() == pytest.approx(0.01) and model.w.abs().max() < 0.5


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("constant", [0.2, 0.2, 0.2]), ("linear", [0.2, 0.1, 0.2 / 100]), ("exponential", [0.2, 0.2e-2, 0.2e-4])],
)
def test_learning_rate_schedules(schedule, expected):
    steps = [0, 50, 99]
    got = [scheduled_lr(0.2, schedule, s, 100) for s in steps]
    if schedule == "exponential":
        expected[2] = 0.2 * 1e-4 ** (99 / 100)
    assert got == pytest.approx(expected)
    if schedule != "constant":
        assert all(a > b for a, b in zip(got, got[1:], strict=False))


def fitted(standardize: bool, precondition: bool, lr: float | None = 0.1, **kwargs) -> tuple[LinearRegression, ...]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=generator, dtype=torch.float64) * torch.tensor([1.0, 50.0, 0.01])
    x[:, 2] += 2000.0  # a column of "years": its mean dwarfs its spread
    y = x @ torch.tensor([2.0, -0.1, 30.0], dtype=torch.float64) + 5.0
    stats = TrainingStatistics.of(x, y, ["a", "b", "c"])
    model = LinearRegression(n_features=3, lr=lr, standardize=standardize, precondition=precondition, **kwargs)
    names = ("loss", "lr", "lr_schedule", "average_tail", "standardize", "precondition")
    settings = {k: model.hparams[k] for k in names}
    model.follow(stats, make_plan(stats, len(x), batch_size=32, passes_per_epoch=1, **settings))
    return model, x, y, stats


def test_standardized_weights_map_back_to_the_tables_units():
    model, x, y, stats = fitted(standardize=True, precondition=False)
    with torch.no_grad():
        model.w.copy_(torch.tensor([0.5, -0.25, 0.125]))
        model.b.fill_(0.3)
    w, b = model.coefficients()
    # The same predictions, once in training units (scaled back) and once from the table's units.
    z = (x - stats.moments.x_mean) / stats.moments.x_std
    standardized = (z.float() @ model.w + model.b).double()
    assert torch.allclose(standardized * stats.moments.y_std + stats.moments.y_mean, x @ w + b, rtol=1e-6)
    assert torch.allclose(model(x), x @ w + b)


def test_automatic_lr_is_newton_sized_and_needs_standardized_columns():
    model, *_ = fitted(standardize=True, precondition=True, lr=None, loss="mse")
    assert model.lr == pytest.approx(0.5)
    unconditioned, _, _, stats = fitted(standardize=True, precondition=False, lr=None, loss="mse")
    assert unconditioned.lr == pytest.approx(0.5 / stats.largest_correlation_eigenvalue())
    with pytest.raises(ValueError, match="needs --model.standardize true"):
        LinearRegression(lr=None)


def test_whitening_preconditioner_makes_a_full_batch_mse_step_newtons():
    """On whitened columns mean r² has curvature 2 in every direction: one step of lr 0.5 lands on the optimum."""
    model, x, y, stats = fitted(standardize=True, precondition=True, lr=None, loss="mse")
    opt = model.configure_optimizers()
    with torch.no_grad():
        model.w.zero_()
        model.b.zero_()
    opt.zero_grad()
    model.loss(x, y).backward()
    opt.step()
    w, _ = model.coefficients()
    exact = torch.linalg.lstsq(torch.cat([x, torch.ones(200, 1, dtype=x.dtype)], 1), y[:, None]).solution.squeeze()
    assert torch.allclose(w, exact[:3], rtol=1e-5)
    # The bias absorbs -Σ w·mean(x) (60,000 here) in float32 weights: the predictions are what stay exact.
    assert torch.allclose(model(x), y, rtol=1e-6)


def test_tail_averages_are_what_the_model_reports():
    model = LinearRegression(n_features=2, average_tail=0.5)
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            model.w.fill_(value)
            model.b.fill_(-value)
        model._update_average()
    w, b = model.coefficients()
    assert w.tolist() == [3.0, 3.0] and b.item() == -3.0
    assert model.state_dict()["w_average"].tolist() == [3.0, 3.0]  # checkpointed with the model


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"lr": 0.0}, ["--model.lr", "0.0"]),
        ({"loss": "l1"}, ["--model.loss", "'l1'"]),
        ({"lr_schedule": "cosine"}, ["--model.lr_schedule", "'cosine'"]),
        ({"average_tail": 1.0}, ["--model.average_tail", "1.0"]),
        ({"huber_k": -1.0}, ["--model.huber_k", "-1.0"]),
        ({"loss": "quantile", "quantile": 1.0}, ["--model.quantile", "1.0"]),
        ({"loss": "mae", "quantile": 0.9}, ["--model.quantile 0.9", "--model.loss quantile"]),  # not silently τ = ½
        ({"n_features": 0}, ["--model.n_features", "0"]),
    ],
)
def test_bad_model_arguments_name_themselves(kwargs, names):
    with pytest.raises(ValueError) as error:
        LinearRegression(**kwargs)
    for name in names:
        assert name in str(error.value)
