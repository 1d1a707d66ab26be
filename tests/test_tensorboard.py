"""What a user sees in TensorBoard agrees with the table: read back with TensorBoard's own reader and server."""

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.custom_scalar.layout_pb2 import Layout

from tests.conftest import CONFIGS, fit


def events(log_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_every_scalar_is_at_global_step_and_weights_are_the_tables(tutorial_run):
    cli, summary = tutorial_run
    found = events(cli.trainer.log_dir)
    tags = set(found.Tags()["scalars"])
    names = ["appearance", "personality", "wealth", "inner_quality", "bias"]
    assert {f"weights/{n}" for n in names} | {"train/loss", "train/w_distance", "planted/appearance"} <= tags
    loss_steps = [e.step for e in found.Scalars("train/loss")]
    weight_steps = [e.step for e in found.Scalars("weights/appearance")]
    assert loss_steps == weight_steps == list(range(32, 1601, 32))  # once an epoch, at the step reached
    assert found.Scalars("weights/appearance")[-1].value == pytest.approx(summary["learned"]["w"][0], rel=1e-6)
    final_loss = found.Scalars("train/loss")[-1].value
    assert [e.value for e in found.Scalars("hp_metric")] == [pytest.approx(final_loss)]  # no placeholder -1


def test_table_runs_log_weights_in_the_tables_units_and_their_own_hyperparameters(diabetes_run):
    cli, summary = diabetes_run
    found = events(cli.trainer.log_dir)
    ltg = summary["feature_names"].index("ltg")
    assert found.Scalars("weights/ltg")[-1].value == pytest.approx(summary["learned"]["w"][ltg], rel=1e-6)
    assert abs(summary["learned"]["w"][ltg]) > 10  # original units (standardized it would be ~0.4)
    hparams = (cli.trainer.log_dir and open(f"{cli.trainer.log_dir}/hparams.yaml").read()) or ""
    assert "diabetes.csv" in hparams and "true_w" not in hparams and "appearance" not in hparams


def test_custom_scalar_charts_match_exactly_one_series_each(tmp_path):
    # Columns named tc and tch: TensorBoard reads chart tags as regular expressions, where "weights/tc" draws both.
    cli = fit(tmp_path, "--config", str(CONFIGS / "csv.yaml"), "--trainer.max_epochs", "2", "--report.optimum", "false")
    found = events(cli.trainer.log_dir)
    (tensor,) = found.Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)
    layout = Layout()
    layout.ParseFromString(tensor.tensor_proto.string_val[0])
    scalars = set(found.Tags()["scalars"])
    for category in layout.category:
        for chart in category.chart:
            for pattern in chart.multiline.tag:
                matching = [t for t in scalars if re.search(pattern, t)]
                assert len(matching) <= 1, (pattern, matching)
    assert "weights/tc" in scalars and "weights/tch" in scalars


@pytest.mark.slow
def test_real_tensorboard_server_serves_a_weight(tmp_path):
    cli = fit(tmp_path, "--trainer.max_epochs", "3", "--report.optimum", "false")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(tmp_path / "lightning_logs"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(server.stdout.readline, "")), daemon=True)
    reader.start()  # the server's output is read on a thread: a silent server cannot block the test
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline and server.poll() is None:
            found = [m.group(1) for line in list(lines) if (m := re.search(r"(http://127\.0\.0\.1:\d+)/", line))]
            url = found[0] if found else time.sleep(0.2)
        assert url, f"tensorboard printed no URL within 60 s: {lines[-5:]}"
        query = urllib.parse.urlencode({"run": "version_0", "tag": "weights/appearance"})
        points = []
        while not points and time.monotonic() < deadline:  # the server loads event files in the background
            try:
                with urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?{query}", timeout=5) as response:
                    points = json.load(response)
            except urllib.error.HTTPError:
                time.sleep(0.5)
        assert [step for _, step, _ in points] == [32, 64, 96]
        assert points[-1][2] == pytest.approx(cli.model.coefficients()[0][0].item(), rel=1e-6)
    finally:
        server.terminate()
        server.wait(timeout=10)
