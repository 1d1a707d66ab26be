"""The rows: planted data, the held-out split, the batches of every step and the chosen batch size."""

import math

import pytest
import torch

from lit_linreg.data import LinRegDataModule
from lit_linreg.data.sampler import StepBatches, epoch_seed
from lit_linreg.plan import auto_batch_size
from lit_linreg.stats.training import TrainingStatistics


def make(**kwargs) -> LinRegDataModule:
    data = LinRegDataModule(**kwargs)
    data.setup("fit")
    return data


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make(seed=1), make(seed=1), make(seed=2)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)


def test_shapes_and_planted_relation():
    data = make(n_samples=300, true_w=[1.0, -2.0, 3.0], true_b=0.5, feature_names=None, noise_std=0.01)
    assert data.x.shape == (300, 3) and data.y.shape == (300,)
    assert data.feature_names == ["x1", "x2", "x3"] and data.n_features == 3
    residual = data.y - (data.x @ torch.tensor([1.0, -2.0, 3.0]) + 0.5)
    assert residual.std() < 0.02 and abs(residual.mean()) < 0.005  # N(0, 0.01) noise, no offset


def test_noise_mean_reproduces_the_tutorials_generator():
    data = make(true_b=0.0, noise_mean=1.0)
    residual = data.y - data.x @ torch.tensor(data.true_w)
    assert abs(residual.mean() - 1.0) < 0.005
    assert data.true_b == 1.0  # what the fit should find: the tutorial's intercept is its noise mean


def test_each_step_reads_a_batch_fixed_by_seed_and_step():
    def epoch(seed, e, first_step=None):
        batches = StepBatches(500, 16, seed, first_step=lambda: e * 32 if first_step is None else first_step)
        return [rows for rows, _ in batches]

    order = epoch(7, 3)
    assert len(order) == 32 and [len(r) for r in order[-2:]] == [16, 4]
    assert torch.equal(torch.cat(order).sort().values, torch.arange(500, dtype=torch.int32))  # every row once
    assert all(torch.equal(a, b) for a, b in zip(order, epoch(7, 3), strict=True))
    assert not torch.equal(torch.cat(order), torch.cat(epoch(7, 4)))
    assert not torch.equal(torch.cat(order), torch.cat(epoch(8, 3)))
    # Resuming at step 3*32 + 10 reads exactly the rest of epoch 3: the position is the global step.
    rest = epoch(7, 3, first_step=3 * 32 + 10)
    assert len(rest) == 22 and all(torch.equal(a, b) for a, b in zip(rest, order[10:], strict=True))
    assert epoch_seed(7, 3) == epoch_seed(7, 3) != epoch_seed(3, 7)


def test_an_epoch_of_several_passes_reads_the_passes_that_single_pass_epochs_would():
    """The order depends on the pass alone: 3 passes an epoch are epochs 3e, 3e+1, 3e+2 of one pass each."""

    def steps(passes, first_step):
        return [rows for rows, _ in StepBatches(20, 8, seed=5, first_step=lambda: first_step, passes=passes)]

    epoch_1 = steps(3, first_step=9)  # 3 batches a pass (8 + 8 + 4 rows), 9 steps an epoch
    single = [batch for e in (3, 4, 5) for batch in steps(1, first_step=3 * e)]
    assert len(epoch_1) == 9 and all(torch.equal(a, b) for a, b in zip(epoch_1, single, strict=True))
    for start in (0, 3, 6):  # every pass visits every row once
        assert torch.equal(torch.cat(epoch_1[start : start + 3]).sort().values, torch.arange(20, dtype=torch.int32))
    # Resuming in the middle of the epoch's second pass reads exactly the rest of the epoch.
    rest = steps(3, first_step=9 + 4)
    assert len(rest) == 5 and all(torch.equal(a, b) for a, b in zip(rest, epoch_1[4:], strict=True))


def test_ranks_split_every_global_batch_between_them():
    def batches(rank, world_size):
        return list(StepBatches(37, 5, seed=0, first_step=lambda: 2 * 8, rank=rank, world_size=world_size))

    single = batches(0, 1)
    ranks = [batches(r, 3) for r in range(3)]
    assert all(len(r) == len(single) for r in ranks)
    for step, (rows, size) in enumerate(single):
        shards = [ranks[r][step] for r in range(3)]
        assert all(global_size == size for _, global_size in shards)
        assert torch.equal(torch.cat([s for s, _ in shards]), rows)


def test_block_shuffle_moves_blocks_of_consecutive_rows_and_still_visits_every_row_once():
    batches = StepBatches(103, 10, seed=3, first_step=lambda: 11, block_rows=8)  # step 11: epoch 1
    order = torch.cat([rows for rows, _ in batches])
    assert torch.equal(order.sort().values, torch.arange(103, dtype=order.dtype))
    position = order.argsort()  # where each row landed in the epoch's order
    for start in range(0, 103, 8):
        block = torch.arange(start, min(start + 8, 103))
        assert torch.equal(position[block], position[start] + torch.arange(len(block)))  # kept together, in order
    block_order = position[torch.arange(0, 103, 8)].argsort()
    assert not torch.equal(block_order, torch.arange(len(block_order)))  # the blocks themselves are shuffled


def test_held_out_rows_are_a_seeded_disjoint_share_and_both_sets_are_views():
    split, whole = make(n_samples=100, val_fraction=0.2), make(n_samples=100)
    (x_train, _), (x_val, _) = split.train_rows(), split.held_out_rows()
    assert len(x_train) == 80 and len(x_val) == 20
    rows = torch.cat([x_train, x_val])  # together, every row once
    assert torch.equal(rows[rows[:, 0].argsort()], whole.x[whole.x[:, 0].argsort()])
    assert x_train.data_ptr() == split.x.data_ptr()  # views into the data, not copies
    assert not torch.equal(make(n_samples=100, val_fraction=0.2, seed=5).held_out_rows()[1], split.held_out_rows()[1])


def statistics(n_rows: int, columns: int, leverage: float = 1.0) -> TrainingStatistics:
    x = torch.randn(n_rows, columns, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if leverage > 1:
        x[0] = leverage  # one far row
    return TrainingStatistics.of(x, x.sum(1), [f"c{i}" for i in range(columns)])


@pytest.mark.parametrize(("n_rows", "columns"), [(16, 6), (442, 10), (20_000, 9), (1_000_000, 10)])
def test_chosen_batch_size_follows_the_table(n_rows, columns):
    stats = statistics(min(n_rows, 50_000), columns)
    size = auto_batch_size(n_rows, stats)
    batches = math.ceil(n_rows / size)
    assert size >= min(n_rows, 4 * (columns + 1)) and size <= max(8192, 4 * (columns + 1))
    assert n_rows - (batches - 1) * size >= size - batches  # batches of (nearly) equal size: no small last one
    if n_rows >= 64 * 8192:
        assert size > 8000  # big tables: big batches, cheap per row
    elif n_rows > 64 * 4 * (columns + 1):
        assert 32 <= batches <= 128  # about 64 steps an epoch


def test_chosen_batch_holds_at_least_the_largest_row_leverage():
    far = statistics(2000, 3, leverage=60.0)
    assert far.max_leverage > 100
    assert auto_batch_size(2000, far) >= far.max_leverage


def test_evaluation_loaders_cover_each_row_once_in_order():
    data = make(n_samples=70_000, val_fraction=0.5)
    batches = list(data.val_dataloader())
    assert [len(x) for x, _, _, _ in batches] == [35_000]  # one batch: evaluation batches are large
    x, y, weights, size = batches[0]
    assert torch.equal(x, data.held_out_rows()[0]) and size == 35_000 and weights is None
