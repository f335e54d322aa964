"""One writer per run folder; only the library's own files replaced; a stopped run re-usable (issue 12)."""

import fcntl
import json
import os

import cv2
import numpy as np
import pytest

from multilabel_keras.cli import main
from multilabel_keras.runs import RunDir

LOCK_FILE = RunDir.LOCK

from conftest import draw, write_rgb

TRAIN = ["--epochs", "1", "--image-size", "32", "--batch-size", "8", "--val-split", "0.25", "--quiet"]


def _snapshot(folder):
    found = {}
    for d, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def test_a_second_writer_is_refused_and_changes_nothing(folder_data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with open(run / LOCK_FILE, "w") as other:  # another process's claim, as flock sees it
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.write("4242\n")
        other.flush()
        before = _snapshot(run)
        code = main(["train", "--data", str(folder_data), "--out", str(run), "--overwrite", *TRAIN])
        assert _snapshot(run) == before
    err = capsys.readouterr().err
    assert code == 2 and "another process (pid 4242) is writing into" in err


def test_a_run_finished_between_check_and_claim_is_not_replaced(tmp_path):
    run = tmp_path / "run"
    RunDir(run).check_free(overwrite=False)  # empty: accepted
    run.mkdir()
    (run / "model.keras").write_bytes(b"the other run's model")

    with pytest.raises(FileExistsError, match="not empty"):
        with RunDir(run).claim():
            pass
    assert (run / "model.keras").read_bytes() == b"the other run's model"


def test_the_claim_ends_when_the_call_ends_even_on_error(tmp_path):
    run = tmp_path / "run"

    with pytest.raises(RuntimeError):
        with RunDir(run).claim():
            raise RuntimeError("boom")
    assert os.listdir(run) == []  # the lock file goes with the claim: the folder is re-usable
    with open(run / LOCK_FILE, "w") as f:  # and nobody holds a lock on it any more
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_library_files_knows_its_own_names_and_temp_files(tmp_path):
    for name in ("model.keras", ".model.ab12cd34.tmp.keras", ".backbone.weights.x1y2z3w4.tmp.h5",
                 "mine.keras", "resume/state.npz", "resume/notes.txt", LOCK_FILE):
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    ours, theirs = RunDir(tmp_path).library_files()
    assert ours == sorted([".backbone.weights.x1y2z3w4.tmp.h5", ".model.ab12cd34.tmp.keras", LOCK_FILE,
                           "model.keras", "resume/state.npz"])
    assert theirs == ["mine.keras", "resume/notes.txt"]
    RunDir(tmp_path).remove_library_files(only_resume=True)
    assert (tmp_path / "model.keras").exists() and not (tmp_path / "resume/state.npz").exists()
    assert (tmp_path / "resume/notes.txt").read_bytes() == b"x"  # the user's file and its folder stay


def test_a_stopped_run_is_refused_with_cli_hints(tmp_path, capsys, folder_data):
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    for name in ("spec.json", "samples.json", "state.npz"):
        (run / "resume" / name).write_bytes(b"{}")
    with pytest.raises(FileExistsError, match="holds a stopped run"):
        RunDir(run).check_free(overwrite=False)
    assert main(["train", "--data", str(folder_data), "--out", str(run), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert f"--resume {run}" in err and "--overwrite" in err and "overwrite=True" not in err


@pytest.mark.slow
def test_a_run_stopped_before_its_first_epoch_is_rerun_by_the_same_command(folder_data, tmp_path):
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "resume" / "spec.json").write_text("{}")
    (run / "resume" / "samples.json").write_text("{}")
    (run / ".model.ab12cd34.tmp.keras").write_bytes(b"half written")
    assert main(["train", "--data", str(folder_data), "--out", str(run), *TRAIN]) == 0
    assert not (run / ".model.ab12cd34.tmp.keras").exists() and not (run / "resume").exists()
    assert json.loads((run / "config.json").read_text())["epochs_run"] == 1


@pytest.mark.slow
def test_overwrite_replaces_only_the_library_files(folder_data, tmp_path):
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "resume" / "notes.txt").write_text("my notes")  # the old --overwrite deleted this
    (run / "mine.csv").write_text("a,b\n")
    (run / "head.keras").write_bytes(b"stale: from an earlier train --features run")
    assert main(["train", "--data", str(folder_data), "--out", str(run), "--overwrite", *TRAIN]) == 0
    assert (run / "resume" / "notes.txt").read_text() == "my notes"
    assert (run / "mine.csv").read_text() == "a,b\n"
    assert not (run / "head.keras").exists()  # no stale file passes for this run's
    assert (run / "model.keras").exists() and not (run / "resume" / "spec.json").exists()


@pytest.mark.slow
def test_explain_names_are_unique_and_stay_in_the_folder(tmp_path, capsys):
    root = tmp_path / "csv"
    rows = ["filename,labels"]
    for i in range(8):
        write_rgb(str(root / f"{i}.png"), draw("red" if i % 2 else "blue", "square", seed=i))
        rows.append(f"{i}.png,{'../up' if i % 2 else 'a/b'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(root / "labels.csv"), "--out", str(run), *TRAIN]) == 0
    photos = [tmp_path / "x" / "shoe.jpg", tmp_path / "y" / "shoe.jpg"]
    for i, photo in enumerate(photos):
        write_rgb(str(photo), np.full((40, 40, 3), 60 + 100 * i, np.uint8))
    out = tmp_path / "overlays"
    capsys.readouterr()
    assert main(["explain", "--run", str(run), "--label", "../up", "--out", str(out),
                 *map(str, photos)]) == 0
    written = sorted(os.listdir(out))
    assert written == ["shoe_.._up-2.png", "shoe_.._up.png"]
    reported = [json.loads(line)["overlay"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(os.path.basename(p) for p in reported) == written
    assert not (tmp_path / "up").exists() and not any(p.name.endswith(".png") for p in tmp_path.iterdir())
    # A file name that is not valid UTF-8 is predicted and explained (cv2.imread used to crash on it).
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    with open(odd, "wb") as f:  # not cv2.imwrite: OpenCV crashes on such a name
        f.write(cv2.imencode(".png", np.full((40, 40, 3), 90, np.uint8))[1].tobytes())
    assert main(["predict", "--run", str(run), os.fsdecode(odd)]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == os.fsdecode(odd)
    assert main(["explain", "--run", str(run), "--label", "a/b", "--out", str(out / "odd.png"),
                 os.fsdecode(odd)]) == 0
    assert (out / "odd.png").stat().st_size > 0
