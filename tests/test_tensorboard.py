"""What a user sees in TensorBoard: read back with TensorBoard's own reader and its own server."""

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import fit


def test_event_files_hold_loss_weights_bias_and_distance(tutorial_run):
    cli, summary = tutorial_run
    events = EventAccumulator(cli.trainer.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for name in ["appearance", "personality", "wealth", "inner_quality"]:
        assert f"weights/{name}" in tags
    assert {"weights/bias", "train/loss", "train/w_distance", "hp_metric"} <= tags
    loss = [e.value for e in events.Scalars("train/loss")]
    assert len(loss) == 50  # once per epoch
    assert loss[-1] < loss[0] / 50
    assert events.Scalars("weights/appearance")[-1].value == summary["learned"]["w"][0]


def test_real_tensorboard_server_serves_a_weight(tmp_path):
    cli = fit(tmp_path, "--trainer.max_epochs", "3")
    logdir = tmp_path / "lightning_logs"
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line or server.poll() is None, "tensorboard exited before printing its URL"
            if match := re.search(r"(http://127\.0\.0\.1:\d+)/", line):
                url = match.group(1)
        assert url, "tensorboard printed no URL within 60 s"
        query = urllib.parse.urlencode({"run": "version_0", "tag": "weights/appearance"})
        points = []
        while not points and time.monotonic() < deadline:  # the server loads event files in the background
            try:
                with urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?{query}", timeout=5) as response:
                    points = json.load(response)
            except urllib.error.HTTPError:
                time.sleep(0.5)
        assert [step for _, step, _ in points] == [32, 64, 96]  # logged at each epoch's end, at the steps done
        assert points[-1][2] == cli.model.w[0].item()
    finally:
        server.terminate()
        server.wait(timeout=10)
