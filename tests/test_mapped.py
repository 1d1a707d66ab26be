"""Tables bigger than memory: trained from a memory-mapped cache written once beside them."""

import gc
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import CONFIGS, fit, read_summary, run_train
from tests.memory_probe import anonymous_kb

TABLE = ["--config", str(CONFIGS / "csv.yaml"), "--data.target", "y", "--data.shuffle_block_rows", "64"]


def write_parquet(path: Path, rows: int, seed: int = 0, row_group: int | None = None) -> str:
    """float32 columns, as big tables usually arrive; several row groups, as big files are written."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32) * np.float32([1, 10, 0.1, 5, 2, 1])
    y = (x @ np.float32([1, -2, 3, 0.5, 0, 2]) + 4 + rng.standard_t(3, rows)).astype(np.float32)
    pq.write_table(
        pa.table({**{f"c{j}": x[:, j] for j in range(6)}, "y": y}), path, row_group_size=row_group or rows // 7 + 1
    )
    return str(path)


def test_memory_mapped_training_learns_what_training_from_memory_learns(tmp_path):
    path = write_parquet(tmp_path / "big.parquet", 60_000)
    short = ["--data.path", path, "--trainer.max_epochs", "3"]  # the same steps either way, not convergence
    mapped = fit(tmp_path / "mapped", *TABLE, *short, "--data.memory_map", "true")
    memory = fit(tmp_path / "memory", *TABLE, *short)
    assert mapped.datamodule.memory_mapped and not memory.datamodule.memory_mapped
    assert mapped.datamodule.x.dtype == torch.float32  # a float32 file stays float32 on disk
    assert mapped.trainer.global_step == memory.trainer.global_step
    # The same statistics to the bit (one definition, the same chunks), so the same scales, batch size and lr...
    a, b = mapped.datamodule.training_statistics(), memory.datamodule.training_statistics()
    assert torch.equal(a.moments.x_mean, b.moments.x_mean) and torch.equal(a.moments.x_std, b.moments.x_std)
    assert a.max_leverage == b.max_leverage and mapped.model.lr == memory.model.lr
    # ...and, float32 cells being exact in float64, the same steps: the same weights to the bit.
    for learned, expected in zip(mapped.model.coefficients(), memory.model.coefficients(), strict=True):
        assert torch.equal(learned, expected)
    a, b = read_summary(mapped), read_summary(memory)
    np.testing.assert_allclose(a["optimum"]["w"], b["optimum"]["w"], rtol=1e-9)  # the report streams the same rows


def test_the_cache_is_written_once_and_a_changed_table_gets_a_new_one(tmp_path):
    path = write_parquet(tmp_path / "t.parquet", 5_000)
    args = [*TABLE, "--data.path", path, "--data.memory_map", "true", "--report.optimum", "false"]
    fit(tmp_path / "a", *args, "--trainer.max_epochs", "1")
    (cache,) = tmp_path.glob(".t.parquet.*.lit_linreg.bin")
    written = cache.stat().st_mtime_ns
    fit(tmp_path / "b", *args, "--trainer.max_epochs", "1")
    assert cache.stat().st_mtime_ns == written  # reused, statistics and all
    meta = json.loads(cache.with_suffix(".json").read_text())
    assert meta["rows"] == 5_000 and meta["features"] == [f"c{j}" for j in range(6)]
    write_parquet(tmp_path / "t.parquet", 4_000, seed=1)
    fit(tmp_path / "c", *args, "--trainer.max_epochs", "1")
    (replaced,) = tmp_path.glob(".t.parquet.*.lit_linreg.bin")
    assert replaced != cache and json.loads(replaced.with_suffix(".json").read_text())["rows"] == 4_000


def test_an_edit_that_keeps_size_and_modification_time_gets_a_new_cache(tmp_path):
    """`touch -r`, `cp -p` and rsync put the old modification time back on an edited file."""
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i % 7},{i % 5}\n" for i in range(200)))
    args = [*TABLE, "--data.path", str(path), "--data.memory_map", "true", "--trainer.max_epochs", "1"]
    before = read_summary(fit(tmp_path / "a", *args))
    stat = path.stat()
    path.write_text(path.read_text().replace("3,", "4,"))  # same size, other numbers
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = read_summary(fit(tmp_path / "b", *args))
    assert after["optimum"]["w"] != before["optimum"]["w"]  # the edited rows, not the stale cache
    assert len(list(tmp_path.glob(".t.csv.*.lit_linreg.bin"))) == 1  # the stale cache was replaced


def test_memory_mapped_csv_with_categories_and_missing_cells(tmp_path):
    rows = ["a,region,y", *(f"{i % 7},{['n', 's', 'w'][i % 3]},{i % 5}" for i in range(300)), ",n,1", "2,,3"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    args = [*TABLE, "--data.path", str(path), "--data.memory_map", "true", "--data.missing", "drop"]
    summary = read_summary(fit(tmp_path / "run", *args, "--trainer.max_epochs", "2"))
    assert summary["feature_names"] == ["a", "region=s", "region=w"] and summary["n_rows"] == 300
    assert any("dropped 2 of 302 rows" in note for note in summary["notes"])


def test_a_streamed_table_too_big_for_the_exact_lad_says_so(tmp_path, monkeypatch):
    import lit_linreg.stats.analysis as analysis

    monkeypatch.setattr(analysis, "STREAMED_LAD_MAX_ROWS", 1000)
    path = write_parquet(tmp_path / "t.parquet", 5_000)
    args = [*TABLE, "--data.path", path, "--data.memory_map", "true", "--trainer.max_epochs", "2"]
    summary = read_summary(fit(tmp_path / "run", *args, "--model.loss", "mae"))
    assert summary["optimum"] is None and "exact mae optimum and inference skipped" in summary["optimum_note"]
    mse = read_summary(fit(tmp_path / "mse", *args))  # a table's default
    assert mse["optimum"] is not None and mse["std_errors"] is not None  # least squares streams


@pytest.mark.slow
@pytest.mark.longest
def test_a_memory_mapped_table_stays_out_of_anonymous_memory(tmp_path):
    """Scaled down from benchmarks/bench_data.py's 4 GB run: 2M rows x 7 float32 columns (56 MB on disk)."""
    path = write_parquet(tmp_path / "t.parquet", 2_000_000, row_group=100_000)
    probe = '{"class_path": "tests.memory_probe.AnonymousMemory"}'
    args = ["fit", *TABLE, "--data.path", path, "--trainer.max_epochs", "1", "--report.optimum", "false"]
    args += ["--report.plot", "false", "--trainer.callbacks+", probe]
    anon = {}
    for name, extra in (("writes", ["--data.memory_map", "true"]), ("maps", ["--data.memory_map", "true"])):
        # glibc keeps a varying amount of freed memory (its mmap threshold moves with each free): a fixed
        # threshold returns it, so that what is measured is what the program holds, not what malloc caches.
        result = run_train(tmp_path / name, *args, *extra, env={"MALLOC_TRIM_THRESHOLD_": str(1 << 20)})
        assert result.returncode == 0, result.stderr[-2000:]
        anon[name] = int(re.search(r"Anonymous growth (-?\d+) kB", result.stdout).group(1)) * 1024
    data_bytes = 2_000_000 * 7 * 8  # float64 in memory (training from memory holds them all)
    assert anon["writes"] < data_bytes / 2  # writing the cache holds a block of rows at a time...
    assert anon["maps"] < data_bytes / 4  # ...and training from it holds none of them


def test_the_memory_probe_sees_what_a_process_holds():
    """What makes the bars above mean something: rows a process holds in memory count in full."""
    gc.collect()  # no earlier test's garbage freed in between
    gc.disable()
    try:
        before = anonymous_kb()
        rows = np.ones((1_000_000, 7))  # 56 MB, written to: resident
        grown = anonymous_kb() - before
    finally:
        gc.enable()
    assert grown > rows.nbytes / 1024 * 0.99
