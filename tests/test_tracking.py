"""Users' Keras callbacks reach every trainer; --tensorboard logs through Keras' own callback.

Oracles: Keras' TensorBoard callback's event files read back with
TensorFlow's own summary reader, and a plain callback's record of the
epochs compared with the run's ``history.csv``.
"""

import csv
import glob
import os

import keras
import pytest

from conftest import make_folder_data
from multilabel_keras.cli import main


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, dict(logs or {})))


def _scalars(folder):
    """Every scalar tag TensorFlow's reader finds in the event files under ``folder``."""
    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags |= {value.tag for value in event.summary.value}
    return tags


def test_train_passes_user_callbacks_after_its_own(tmp_path):
    from multilabel_keras import from_folders, train

    recorder = Recorder()
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))
    data = from_folders(make_folder_data(tmp_path / "data", per_folder=4))
    train(data, tmp_path / "run", image_size=32, epochs=2, batch_size=8, verbose=0,
          callbacks=[recorder, board])
    with open(tmp_path / "run" / "history.csv", encoding="utf-8") as f:
        history = list(csv.DictReader(f))
    assert [epoch for epoch, _ in recorder.epochs] == [0, 1] and len(history) == 2
    for (_, logs), row in zip(recorder.epochs, history):  # they see the exact mAP the run keeps
        assert logs["val_mAP"] == pytest.approx(float(row["val_mAP"]), abs=1e-6)
    assert "epoch_mAP" in _scalars(str(tmp_path / "logs"))


def test_feature_trainer_passes_callbacks_and_bad_ones_are_named(tmp_path):
    import warnings

    from multilabel_keras import extract_features, from_folders, train, train_on_features

    data = from_folders(make_folder_data(tmp_path / "data", per_folder=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random backbone weights
        extract_features(data, tmp_path / "features", "mobilenetv2", weights=None, image_size=32,
                         verbose=0)
        recorder = Recorder()
        train_on_features(tmp_path / "features", tmp_path / "run", epochs=3, verbose=0,
                          callbacks=[recorder])
    assert len(recorder.epochs) == 3 and "val_mAP" in recorder.epochs[0][1]
    with pytest.raises(ValueError, match=r"callbacks\[1\] must be a keras.callbacks.Callback"):
        train(data, tmp_path / "other", image_size=32, epochs=1, callbacks=[recorder, "board"])
    assert not os.path.exists(tmp_path / "other")


@pytest.mark.slow
def test_cli_tensorboard_flag_writes_event_files(tmp_path):
    data = make_folder_data(tmp_path / "data", per_folder=3)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--image-size", "32", "--quiet", "--tensorboard", str(tmp_path / "tb")]) == 0
    tags = _scalars(str(tmp_path / "tb"))
    assert {"epoch_loss", "epoch_mAP"} <= tags


def test_cli_tensorboard_without_the_package_is_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    data = make_folder_data(tmp_path / "data", per_folder=1)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install" in err and "--tensorboard" in err
    assert not os.path.exists(tmp_path / "run")
