"""The tutorial's experiment end to end: the planted weights come back, by exactly the tutorial's SGD steps."""

import torch

from lit_linreg.data.sampler import epoch_seed
from lit_linreg.data.sources import PlantedPeople
from tests.conftest import CONFIGS, fit, read_summary


def test_recovers_planted_weights_in_1600_steps_of_one_batch_each(tutorial_run):
    cli, summary = tutorial_run
    assert summary["global_step"] == cli.trainer.global_step == 1600
    assert summary["epochs"] == 50 and cli.trainer.num_training_batches == 32  # one SGD step per training_step
    errors = [abs(a - b) for a, b in zip(summary["learned"]["w"], summary["true"]["w"], strict=True)]
    assert max(errors) < 0.02, errors
    assert abs(summary["learned"]["b"] - 1.1) < 0.02
    assert summary["feature_names"] == ["appearance", "personality", "wealth", "inner_quality"]
    assert summary["fit_seconds"] > 0


def test_the_run_is_the_tutorials_plain_sgd_loop_bit_for_bit(tutorial_run):
    """The same 1600 updates written as a plain loop: seeded data, seeded init, each epoch's shuffle, p -= lr·grad."""
    cli, _ = tutorial_run
    generator = torch.Generator().manual_seed(42)
    people = PlantedPeople(500, [8.1, 2.0, 2.0, 4.0], 1.1, 0.01, 0.0, None)
    rows = people.rows(generator)
    x, y = rows.x, rows.y
    torch.manual_seed(42)  # what seed_everything does before the model draws its initial weights
    w = (0.1 * torch.randn(4)).requires_grad_()
    b = torch.tensor(0.01, requires_grad=True)
    for epoch in range(50):
        order = torch.randperm(500, generator=torch.Generator().manual_seed(epoch_seed(42, epoch)), dtype=torch.int32)
        for rows in order.split(16):
            loss = (x[rows] @ w + b - y[rows]).abs().sum() * (1 / len(rows))
            loss.backward()
            with torch.no_grad():
                for p in (w, b):
                    p.add_(p.grad, alpha=-0.01)  # p <- p - lr·grad, rounded as torch's optimizers round it
                    p.grad = None
    assert torch.equal(cli.model.w.detach(), w.detach()) and torch.equal(cli.model.b.detach(), b.detach())


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = fit(tmp_path / "a", "--trainer.max_epochs", "3", "--report.optimum", "false").model.w.detach()
    b = fit(tmp_path / "b", "--trainer.max_epochs", "3", "--report.optimum", "false").model.w.detach()
    c = fit(tmp_path / "c", "--trainer.max_epochs", "3", "--seed_everything", "5", "--report.optimum", "false")
    assert torch.equal(a, b) and not torch.equal(a, c.model.w.detach())


def test_max_steps_is_honoured_mid_epoch(tmp_path):
    cli = fit(tmp_path, "--trainer.max_steps", "43", "--report.optimum", "false")
    assert cli.trainer.global_step == 43 and read_summary(cli)["global_step"] == 43


def test_blog_config_reports_the_intercept_its_data_really_has(tmp_path):
    """The tutorial's generator never uses b = 1.1: the data's intercept is the noise mean, 1.0."""
    blog = ["--config", str(CONFIGS / "seed.yaml"), "--config", str(CONFIGS / "blog.yaml")]
    summary = read_summary(fit(tmp_path, *blog))
    assert summary["true"]["b"] == 1.0
    assert abs(summary["learned"]["b"] - 1.0) < 0.02 and abs(summary["optimum"]["b"] - 1.0) < 0.005


def test_a_decaying_learning_rate_lands_on_the_optimum(tutorial_run, tmp_path):
    summary = read_summary(fit(tmp_path, "--model.lr", "0.02", "--model.lr_schedule", "linear"))
    assert 0 <= summary["loss_gap"] < 0.005, summary["loss_gap"]
    assert tutorial_run[1]["loss_gap"] > 0.2  # the tutorial's constant lr 0.01 jitters ~30% above it
