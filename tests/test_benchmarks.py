"""The coverage benchmark measured over several sittings (``benchmarks/coverage.py --parts``) counts what one
sitting would: a tally read back goes on from where it stopped, and one whose intervals the code no longer gives
is measured again."""

import json

import pytest

from benchmarks import coverage

SETTING, DATASETS, LOSSES = (32, 4, "normal"), 12, ("mse",)


@pytest.fixture(scope="module")
def at_once():
    rows, _, carried = coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True)
    assert carried == 0
    return rows


def interrupted_after(monkeypatch, analyses):
    """``Tally.add`` that stops the run (as Ctrl-C would) once it has counted ``analyses`` datasets."""
    add, counted = coverage.Tally.add, []

    def stopping(self, *args, **kwargs):
        if len(counted) == analyses:
            raise KeyboardInterrupt
        counted.append(1)
        add(self, *args, **kwargs)

    monkeypatch.setattr(coverage.Tally, "add", stopping)


def test_a_run_stopped_part_way_goes_on_from_its_last_save(tmp_path, monkeypatch, at_once):
    interrupted_after(monkeypatch, coverage.SAVE_EVERY + 1)
    with pytest.raises(KeyboardInterrupt):
        coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True, parts=tmp_path)
    (saved,) = tmp_path.iterdir()
    assert saved.name == "n32-p4-normal-mse-12.json" and json.loads(saved.read_text())["done"] == coverage.SAVE_EVERY
    monkeypatch.undo()
    rows, _, carried = coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True, parts=tmp_path)
    assert carried == coverage.SAVE_EVERY and rows == at_once
    rows, _, carried = coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True, parts=tmp_path)
    assert carried == DATASETS and rows == at_once  # finished: read back whole


def test_a_tally_whose_intervals_the_code_no_longer_gives_is_measured_again(tmp_path, at_once):
    coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True, parts=tmp_path)
    (saved,) = tmp_path.iterdir()
    tally = json.loads(saved.read_text())
    tally["ours"] = 0  # a count that only a measurement from scratch puts right
    tally["canaries"][str(DATASETS // 2)]["ours"][1][0] *= 1 + 1e-8  # beyond rounding: other code
    saved.write_text(json.dumps(tally))
    rows, _, carried = coverage.measure(SETTING, DATASETS, LOSSES, monte_carlo_cutoff=True, parts=tmp_path)
    assert carried == 0 and rows == at_once
