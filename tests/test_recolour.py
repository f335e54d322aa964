"""Recolouring: hue turned, colour labels unknown, objects kept; checked against colorsys."""

import colorsys
import json

import numpy as np
import tensorflow as tf

from multilabel_keras.cli import main
from multilabel_keras.data.recolour import colour_labels, recolour


def test_hue_turns_but_saturation_and_value_stay():
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (6, 4, 4, 3)).astype(np.float32)
    labels = tf.constant([[1.0, 0.0, 1.0]] * 6)
    out, targets = recolour(tf.constant(pixels), labels, [1.0, 1.0, 0.0], 1.0, (4, 2))
    out = out.numpy()
    for before, after in zip(pixels.reshape(-1, 3) / 255, out.reshape(-1, 3) / 255):
        h0, s0, v0 = colorsys.rgb_to_hsv(*before)
        h1, s1, v1 = colorsys.rgb_to_hsv(*after)
        assert abs(s0 - s1) < 1e-3 and abs(v0 - v1) < 1e-3
        if s0 > 0.05:  # grey has no hue to turn
            turn = (h1 - h0) % 1.0
            assert 1 / 6 - 1e-3 <= turn <= 5 / 6 + 1e-3
    # Colour labels become unknown; the object label is kept.
    assert targets.numpy().tolist() == [[-1.0, -1.0, 1.0]] * 6


def test_only_the_chosen_share_is_recoloured():
    images = tf.fill((400, 2, 2, 3), 100.0) + tf.constant([80.0, 0.0, 0.0])
    labels = tf.ones((400, 2))
    out, targets = recolour(images, labels, [1.0, 0.0], 0.3, (1, 1))
    changed = np.any(out.numpy() != images.numpy(), axis=(1, 2, 3))
    unknown = targets.numpy()[:, 0] == -1
    assert np.array_equal(changed, unknown)
    assert 0.2 < changed.mean() < 0.4


def test_split_leaves_each_image_one_kind_of_target():
    images = tf.fill((400, 2, 2, 3), 100.0) + tf.constant([80.0, 0.0, 0.0])
    labels = tf.constant([[1.0, 0.0, 1.0]] * 400)
    out, targets = recolour(images, labels, [1.0, 1.0, 0.0], 0.75, (3, 5), split=True)
    changed = np.any(out.numpy() != images.numpy(), axis=(1, 2, 3))
    targets = targets.numpy()
    # Recoloured: colours unknown, the object kept; untouched: colours kept, the object unknown.
    assert (targets[changed] == [-1.0, -1.0, 1.0]).all()
    assert (targets[~changed] == [1.0, 0.0, -1.0]).all()
    assert 0.65 < changed.mean() < 0.85


def test_colour_labels_are_found_by_name():
    assert colour_labels(["red", "dress", "navy_blue", "Light-Grey", "redshirt", "blue jeans"]) == [
        "red", "navy_blue", "Light-Grey"]


def test_train_records_its_colour_labels_and_refuses_unknown_ones(folder_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["colour_labels"] == ["blue", "red"] and config["recolour"] == 0.75
    assert config["recolour_split"] is True
    off = tmp_path / "off"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(off), "--no-recolour-split", "--quiet"]) == 0
    assert json.loads((off / "config.json").read_text())["recolour_split"] is False
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--out", str(bad), "--colour-labels", "red,teal", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'teal'" in err and "Traceback" not in err
    assert not bad.exists()
    assert main(["train", "--data", str(folder_data), "--recolour", "1.5", "--out", str(bad)]) == 2
    assert "--recolour" in capsys.readouterr().err
