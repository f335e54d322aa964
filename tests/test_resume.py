"""A training subprocess is killed mid-run (SIGKILL) and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from multilabel_keras.run_files import read_history
from multilabel_keras.cli import main
from multilabel_keras.run_files import RUN_FILES


def _rows(run):
    return read_history(os.path.join(run, "history.csv"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_planned_epoch(folder_data, tmp_path, capsys):
    run = str(tmp_path / "run")
    command = [sys.executable, "-m", "multilabel_keras.cli", "train", "--data", str(folder_data),
               "--epochs", "6", "--image-size", "32", "--batch-size", "8", "--out", run,
               "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = os.path.join(run, "resume", "state.json")
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(state) and json.load(open(state))["epochs_done"] >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"
    done = json.load(open(state))["epochs_done"]
    assert 2 <= done < 6
    assert not os.path.exists(os.path.join(run, "metrics.json"))  # the run was not finished

    assert main(["train", "--resume", run, "--quiet"]) == 0
    rows = _rows(run)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5, 6]  # each epoch once, in order
    assert sorted(os.listdir(run)) == sorted(RUN_FILES)  # resume/ is gone, nothing half-written
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["epochs_run"] == 6
    best = max(rows, key=lambda row: row["val_mAP"])
    assert config["best_epoch"] == best["epoch"]
    capsys.readouterr()
    assert main(["train", "--resume", run]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_needs_a_resumable_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err
