import torch

from lit_linreg.data import EpochBatches, LinRegDataModule, epoch_seed


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
    assert residual.abs().max() < 0.05 and abs(residual.mean()) < 0.005  # N(0, 0.01) noise, no offset


def test_noise_mean_reproduces_the_tutorials_generator():
    data = make(true_b=0.0, noise_mean=1.0)
    residual = data.y - data.x @ torch.tensor(data.true_w)
    assert abs(residual.mean() - 1.0) < 0.005


def test_every_epoch_visits_every_row_once_in_an_order_fixed_by_seed_and_epoch():
    def epoch_order(seed, epoch):
        batches = EpochBatches(500, 16, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return [rows for rows, _ in batches]

    order = epoch_order(7, 3)
    assert len(order) == 32 and [len(r) for r in order[-2:]] == [16, 4]
    assert torch.equal(torch.cat(order).sort().values, torch.arange(500))
    assert all(torch.equal(a, b) for a, b in zip(order, epoch_order(7, 3), strict=True))
    assert not torch.equal(torch.cat(order), torch.cat(epoch_order(7, 4)))
    assert not torch.equal(torch.cat(order), torch.cat(epoch_order(8, 3)))
    assert epoch_seed(7, 3) == epoch_seed(7, 3) != epoch_seed(3, 7)


def test_ranks_split_every_global_batch_between_them():
    def batches(rank, world_size):
        sampler = EpochBatches(37, 5, shuffle=True, seed=0, rank=rank, world_size=world_size)
        sampler.set_epoch(2)
        return list(sampler)

    single = batches(0, 1)
    ranks = [batches(r, 3) for r in range(3)]
    assert all(len(r) == len(single) for r in ranks)
    for step, (rows, size) in enumerate(single):
        shards = [ranks[r][step] for r in range(3)]
        assert all(global_size == size for _, global_size in shards)
        assert torch.equal(torch.cat([s for s, _ in shards]), rows)


def test_training_items_hold_steps_per_call_batches_gathered_at_once():
    data = make(steps_per_call=3)
    loader = data.train_dataloader()
    items = list(loader)
    assert len(items) == len(loader) == 11  # 32 batches in groups of 3
    x, y, local_sizes, global_sizes = items[0]
    assert x.shape == (48, 4) and y.shape == (48,) and list(local_sizes) == list(global_sizes) == [16, 16, 16]
    assert list(items[-1][2]) == [16, 4]  # the epoch's last group: batches 31 and 32 (4 rows)
    rows = torch.cat([item[0] for item in items])  # every row exactly once
    assert torch.equal(rows[rows[:, 0].argsort()], data.x[data.x[:, 0].argsort()])


def test_evaluation_items_are_single_batches():
    data = make(val_fraction=0.2)
    x, y, size = next(iter(data.val_dataloader()))
    assert x.shape == (16, 4) and y.shape == (16,) and size == 16


def test_val_split_is_held_out_and_disjoint():
    split, whole = make(n_samples=100, val_fraction=0.2), make(n_samples=100)
    (x_train, _), (x_val, _) = split.train_data, split.val_data
    assert len(x_train) == 80 and len(x_val) == 20
    rows = torch.cat([x_train, x_val])  # together, every row once
    assert torch.equal(rows[rows[:, 0].argsort()], whole.x[whole.x[:, 0].argsort()])
    assert x_train.data_ptr() == split.x.data_ptr()  # views into the data, not copies


def test_training_rows_are_views_without_a_split():
    data = make()
    assert data.train_data[0].data_ptr() == data.x.data_ptr() and len(data.train_data[0]) == 500


def test_block_shuffle_moves_blocks_of_consecutive_rows_and_still_visits_every_row_once():
    batches = EpochBatches(103, 10, shuffle=True, seed=3, block_rows=8)
    batches.set_epoch(1)
    order = torch.cat([rows for rows, _ in batches])
    assert torch.equal(order.sort().values, torch.arange(103, dtype=order.dtype))
    position = order.argsort()  # where each row landed in the epoch's order
    for start in range(0, 103, 8):
        block = torch.arange(start, min(start + 8, 103))
        assert torch.equal(position[block], position[start] + torch.arange(len(block)))  # kept together, in order
    block_order = position[torch.arange(0, 103, 8)].argsort()
    assert not torch.equal(block_order, torch.arange(len(block_order)))  # the blocks themselves are shuffled


def test_steps_per_call_by_default_bounds_the_rows_one_call_gathers():
    assert LinRegDataModule(batch_size=16).steps_per_call == 32
    assert LinRegDataModule(batch_size=256).steps_per_call == 32
    assert LinRegDataModule(batch_size=16384).steps_per_call == 8
    assert LinRegDataModule(batch_size=1_000_000).steps_per_call == 1
    assert LinRegDataModule(batch_size=16384, steps_per_call=3).steps_per_call == 3
