"""A training run killed at any point and resumed ends exactly as the same run uninterrupted.

The oracle is the uninterrupted run of the same command. Each killed run is a
subprocess that sends itself SIGKILL at a chosen point (mid-epoch, after an
epoch's work but before its state is saved, while the state file is being
written, at a phase boundary, during the final save); it is then resumed with
``train --resume`` and its weights, history, thresholds and metrics are
compared with the uninterrupted run's.
"""

import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import calibrated_backbone, make_folder_data
from multilabel_keras.data.images import load_images
from multilabel_keras.data.sources import from_folders
from multilabel_keras.cli import main
from multilabel_keras.runs import RunDir
from multilabel_keras.runs.records import read_history
RUN_FILES = RunDir.RUN_FILES

# Runs the CLI and kills itself at the point named by argv[1].
CHILD = r"""
import os, signal, sys
point, argv = sys.argv[1], sys.argv[2:]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if point.startswith(("step:", "tail_step:")):  # mid-epoch, after this many optimizer steps
    from multilabel_keras.training.callbacks import ExactMAP
    step = int(point.split(":")[1])
    def on_train_batch_end(self, batch, logs=None):
        # tail_step: counts only the fine-tuning of the tail on cached maps, not the probe.
        if point.startswith("tail") and not self.model.name.endswith("_tail"):
            return
        if int(self.model.optimizer.iterations.numpy()) >= step:
            die()
    ExactMAP.on_train_batch_end = on_train_batch_end
elif point.startswith("unsaved:"):  # epoch N trained and logged, its state not yet written
    from multilabel_keras.training.trainer import Trainer
    epochs, original = int(point[8:]), Trainer.save_state
    def save_state(self):
        if self.epochs_done == epochs:
            die()
        original(self)
    Trainer.save_state = save_state
elif point.startswith("writing:"):  # half-way through writing epoch N's state file
    from multilabel_keras.runs import resume_state as resume
    epochs, original = int(point[8:]), resume.np.savez
    def savez(f, **arrays):
        meta = resume.json.loads(str(arrays["meta"]))
        if meta["epochs_done"] == epochs:
            f.write(b"PK\x03\x04 half a zip")
            f.flush()
            die()
        original(f, **arrays)
    resume.np.savez = savez
elif point == "phase":  # at the compile that starts phase 2
    import multilabel_keras.training.trainer as trainer
    trainer.compile_model = die
elif point == "final":  # every epoch done, model.keras written, thresholds not yet
    from multilabel_keras.runs import RunDir
    RunDir.write_thresholds = die
from multilabel_keras.cli import main
sys.exit(main(argv))
"""

PLAIN = ["--epochs", "4", "--image-size", "32", "--batch-size", "8", "--patience", "2",
         "--seed", "5", "--quiet"]
# Phase 1 head only (Adam), phase 2 fine-tuning (SGD): the optimizer changes at the boundary.
PHASED = ["--model", "mobilenetv2", "--freeze-epochs", "2", "--finetune-epochs", "2",
          "--unfreeze-from", "last:1", "--image-size", "32", "--batch-size", "8", "--seed", "5",
          "--quiet"]


def _run(point, data, run, flags):
    command = [sys.executable, "-c", CHILD, point, "train", "--data", str(data), "--out",
               str(run), *flags]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          timeout=600)


def _weights(run):
    model = keras.saving.load_model(os.path.join(run, "model.keras"), compile=False,
                                    safe_mode=True)
    return model.get_weights()


def _json(run, name):
    with open(os.path.join(run, name)) as f:
        return json.load(f)


def _same_run(resumed, whole):
    for a, b in zip(_weights(resumed), _weights(whole), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    rows_a, rows_b = read_history(os.path.join(resumed, "history.csv")), read_history(
        os.path.join(whole, "history.csv"))
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        assert ra.keys() == rb.keys()
        for key in ra:
            np.testing.assert_allclose(ra[key], rb[key], rtol=0, atol=1e-6, err_msg=key)
    assert _json(resumed, "thresholds.json") == _json(whole, "thresholds.json")
    assert _json(resumed, "metrics.json") == _json(whole, "metrics.json")
    config_a, config_b = _json(resumed, "config.json"), _json(whole, "config.json")
    # A measured scaling is a fact of the run: the resumed one keeps it.
    for key in ("epochs_run", "best_epoch", "linear_probe", "input_scaling"):
        assert config_a.get(key) == config_b.get(key), key
    assert sorted(os.listdir(resumed)) == sorted(os.listdir(whole))
    assert "resume" not in os.listdir(resumed)
    # The kept rows are written back as they were ("1,1,…", not "1.0,1.0,…").
    assert [line.split(",")[:2] for line in _history_text(resumed)] == [
        line.split(",")[:2] for line in _history_text(whole)]


@pytest.fixture(scope="module")
def plain_whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = make_folder_data(root / "data", per_folder=8)
    whole = root / "whole"
    done = _run("none", data, whole, PLAIN)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return data, whole


@pytest.mark.slow
@pytest.mark.parametrize("point", ["step:9", "unsaved:2", "writing:3", "final"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(plain_whole, tmp_path, point):
    data, whole = plain_whole
    run = tmp_path / "run"
    killed = _run(point, data, run, PLAIN)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert not os.path.exists(run / "metrics.json")  # the run was not finished
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    _same_run(run, whole)


@pytest.mark.slow
def test_a_run_killed_at_a_phase_boundary_resumes_exactly(tmp_path):
    data = make_folder_data(tmp_path / "data", per_folder=8)
    whole, run = tmp_path / "whole", tmp_path / "run"
    done = _run("none", data, whole, PHASED)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    killed = _run("phase", data, run, PHASED)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert [r["phase"] for r in read_history(run / "history.csv")] == [1, 1]
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    _same_run(run, whole)
    assert [r["phase"] for r in read_history(run / "history.csv")] == [1, 1, 2, 2]


def test_resume_needs_a_resumable_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_a_finished_run_has_nothing_left_to_resume(folder_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(run), "--quiet"]) == 0
    assert sorted(os.listdir(run)) == sorted(RUN_FILES)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["version", "truncated"])
def test_a_damaged_or_foreign_resume_state_is_one_clear_line(folder_data, tmp_path, capsys, damage):
    run = tmp_path / "run"
    killed = _run("final", folder_data, run, ["--epochs", "1", "--image-size", "32", "--quiet"])
    assert killed.returncode == -signal.SIGKILL
    state = run / "resume" / "state.npz"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:200])
    else:
        spec = json.loads((run / "resume" / "spec.json").read_text())
        spec["version"] = 1
        (run / "resume" / "spec.json").write_text(json.dumps(spec))
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert ("another version" if damage == "version" else "damaged") in err
    assert str(run) in err


def _history_text(run):
    with open(os.path.join(run, "history.csv")) as f:
        return f.read().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["tail_step:6", "unsaved:2"])
def test_lp_ft_on_cached_maps_resumes_exactly(tmp_path, point):
    # The default recipe with weights: linear probe, then the tail fine-tuned on cached maps.
    data = make_folder_data(tmp_path / "data", per_folder=8)
    weights = calibrated_backbone(str(tmp_path / "w.weights.h5"),
                                  load_images(from_folders(data).paths, 32))
    flags = ["--model", "mobilenetv2", "--weights", weights, "--epochs", "3", "--image-size", "32",
             "--batch-size", "8", "--seed", "5", "--quiet"]
    whole, run = tmp_path / "whole", tmp_path / "run"
    done = _run("none", data, whole, flags)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _json(whole, "config.json")["cached_front"] is True
    killed = _run(point, data, run, flags)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert len(read_history(run / "history.csv")) >= 1  # killed after fine-tuning began
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    _same_run(run, whole)


def _relative_run(point, data, run, flags, cwd):
    """The killed run started with a data path relative to ``cwd``."""
    command = [sys.executable, "-c", CHILD, point, "train", "--data",
               os.path.relpath(data, cwd), "--out", str(run), *flags]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
               PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                          timeout=600, cwd=cwd)


@pytest.mark.slow
def test_a_resume_from_another_folder_reads_the_same_files(plain_whole, tmp_path, monkeypatch):
    data, whole = plain_whole
    started, elsewhere = tmp_path / "started_here", tmp_path / "elsewhere"
    started.mkdir()
    elsewhere.mkdir()
    run = tmp_path / "run"
    killed = _relative_run("unsaved:2", data, run, PLAIN, started)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    # Look-alike files at the same relative paths from the new working folder must not be read.
    decoy = elsewhere / os.path.relpath(data, started)
    make_folder_data(decoy, per_folder=8)
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    _same_run(run, whole)


@pytest.mark.slow
def test_a_resume_whose_images_changed_is_refused_naming_one(tmp_path, capsys):
    data = make_folder_data(tmp_path / "data", per_folder=4)
    run = tmp_path / "run"
    killed = _run("unsaved:2", data, run, ["--epochs", "3", "--image-size", "32", "--quiet"])
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    changed = sorted((data / "red_square").iterdir())[0]
    changed.write_bytes(changed.read_bytes()[::-1][:0] + (data / "blue_circle" / "0.jpg").read_bytes())
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(changed) in err and "changed" in err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_fifo_in_an_images_place_is_not_waited_on(tmp_path):
    from multilabel_keras.runs.resume_state import fingerprint

    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8 not much of a jpeg")
    before = fingerprint(image)
    image.unlink()
    os.mkfifo(image)  # a reader opening it for a blocking read would wait for a writer forever
    assert fingerprint(image) == "missing" != before
