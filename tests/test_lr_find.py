"""The learning-rate range test, and ``learning_rate="find"`` in a run.

Oracles: NumPy's ``geomspace`` for the rates; the weights' bytes before the
test; the loss a plain Keras ``fit`` reaches at a fixed rate.
"""

import json
import os

import keras
import numpy as np
import pytest

from multilabel_keras import from_folders, train
from multilabel_keras.cli import main
from multilabel_keras.training.config import ConfigError, TrainConfig
from multilabel_keras.training.lr_find import find_learning_rate, range_rates


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (x[:, :3] + 0.3 * rng.normal(size=(256, 3)) > 0).astype("float32")
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    return x, y, batches * 40


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                             keras.layers.BatchNormalization(),
                             keras.layers.Dense(3, activation="sigmoid")])


def test_rates_rise_geometrically():
    np.testing.assert_allclose(range_rates(1e-6, 1.0, 61), np.geomspace(1e-6, 1.0, 61), rtol=1e-9)


def test_the_model_is_put_back_and_a_diverging_test_stops_early():
    x, y, batches = _problem()
    model = _model()
    before = [np.array(w) for w in model.get_weights()]  # batch-norm statistics included
    test = find_learning_rate(model, batches, start=1e-5, stop=1e3, steps=120)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)
    assert len(test.rates) < 120  # the loss blew up before 1e3
    np.testing.assert_allclose(test.rates, range_rates(1e-5, 1e3, 120)[:len(test.rates)])
    assert test.losses[-1] > 4 * min(test.losses[:-1]) or not np.isfinite(test.losses[-1])
    assert test.suggestion == pytest.approx(test.lowest / 10)
    assert test.lowest == test.rates[int(np.nanargmin(test.losses))]


def test_the_suggested_rate_trains_better_than_rates_far_from_it():
    x, y, batches = _problem()
    test = find_learning_rate(_model(), batches, start=1e-6, stop=10.0, steps=80)

    def loss_after(rate):
        model = _model()
        model.compile(keras.optimizers.Adam(rate), "binary_crossentropy")
        model.fit(x, y, batch_size=32, epochs=5, verbose=0, shuffle=False)
        return model.evaluate(x, y, verbose=0)

    found = loss_after(test.suggestion)
    assert found < loss_after(test.suggestion / 1000)  # far too slow
    assert found < loss_after(min(10.0, test.lowest * 100))  # past the divergence


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="steps must be"):
        find_learning_rate(_model(), [], steps=2)
    with pytest.raises(ValueError, match="start < stop"):
        find_learning_rate(_model(), [], start=1.0, stop=0.1)


@pytest.mark.parametrize("trainer, settings, words", [
    ("image", {"schedule": "lp_ft"}, "'find' applies to runs without a transfer plan"),
    ("features", {}, "'find' is for the image trainer"),
])
def test_find_is_refused_where_it_cannot_apply(trainer, settings, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(trainer, learning_rate="find", **settings)
    assert TrainConfig("image", learning_rate="find").learning_rate == "find"


def test_a_run_with_find_records_the_rate_it_trained_at(folder_data, tmp_path, capsys):
    run = tmp_path / "run"
    train(from_folders(folder_data), str(run), epochs=1, image_size=32, batch_size=8, learning_rate="find",
          verbose=1)
    assert "from a range test" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    rate, test = config["learning_rate"], config["learning_rate_range_test"]
    assert isinstance(rate, float) and rate == pytest.approx(test["suggestion"])
    assert config["settings"]["settings"]["learning_rate"] == rate  # a resume reuses it


def test_the_command_line_takes_find(folder_data, tmp_path):
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(folder_data), "--epochs", "1", "--image-size", "32",
                 "--batch-size", "8", "--learning-rate", "find", "--out", run, "--quiet"]) == 0
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        assert json.load(f)["learning_rate_range_test"]["steps"] >= 5
