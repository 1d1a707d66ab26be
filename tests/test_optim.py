import pytest
import torch

from lit_linreg.model import LinearRegression
from lit_linreg.optim import SGD


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


def test_parameters_are_exactly_w_and_b():
    model = LinearRegression(n_features=3)
    assert [name for name, _ in model.named_parameters()] == ["w", "b"]
    assert model.w.shape == (3,) and model.b.shape == ()
    assert model.b.item() == pytest.approx(0.01) and model.w.abs().max() < 0.5
