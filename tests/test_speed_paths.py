"""The speed work's paths, each against an oracle that is not the code under test."""

import json

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from conftest import make_folder_data
from multilabel_keras.models.precision import policy_of, with_policy
from multilabel_keras.training.epoch_outputs import EpochOutputs


def test_epoch_outputs_hold_what_the_training_pass_computed():
    # With a learning rate of 0 the weights never move, so the training pass's
    # outputs are model.predict's on the same batches: scikit-learn's AP of
    # those is the oracle.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = (rng.random((40, 3)) < 0.4).astype("float32")
    y[3, 1] = -1  # unknown: stored as it is, left out of the AP
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(inputs))
    kept = EpochOutputs(40, 3)
    model.compile(keras.optimizers.SGD(0.0), "binary_crossentropy", metrics=[kept])
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    targets, scores = kept.arrays()
    np.testing.assert_array_equal(targets, y)
    np.testing.assert_allclose(scores, model.predict(x, verbose=0), atol=1e-6)

    from multilabel_keras.metrics import mean_average_precision

    expected = np.mean([average_precision_score(y[y[:, j] != -1, j], scores[y[:, j] != -1, j])
                        for j in range(3)])
    assert mean_average_precision(targets, scores) == pytest.approx(expected, abs=1e-12)


def test_epoch_outputs_keep_the_present_channel_of_a_two_way_head():
    kept = EpochOutputs(4, 2)
    probs = np.array([[[0.2, 0.8], [0.9, 0.1]]], "float32")
    kept.update_state(np.array([[1, 0]], "float32"), probs)
    np.testing.assert_allclose(kept.arrays()[1], [[0.8, 0.1]], atol=1e-7)


def test_bfloat16_copy_keeps_weights_and_outputs_float32():
    from multilabel_keras import build_model

    model = build_model("smallervggnet", 3, (32, 32, 3))
    fast = with_policy(model, "mixed_bfloat16")
    assert policy_of(fast) == "mixed_bfloat16" and fast.output.dtype == "float32"
    for a, b in zip(model.get_weights(), fast.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    # bfloat16 keeps 8 bits of mantissa: close to float32, not equal.
    np.testing.assert_allclose(fast.predict_on_batch(x), model.predict_on_batch(x), atol=0.05)
    back = with_policy(fast, "float32")
    np.testing.assert_array_equal(back.predict_on_batch(x), model.predict_on_batch(x))


def test_careful_bfloat16_keeps_batch_norm_pixels_and_head_in_float32():
    from multilabel_keras import build_model
    from multilabel_keras.models.precision import CAREFUL_FLOAT32

    model = build_model("smallervggnet", 3, (32, 32, 3))
    careful = with_policy(model, "mixed_bfloat16", CAREFUL_FLOAT32)
    convs = [layer for layer in careful.layers if isinstance(layer, keras.layers.Conv2D)]
    for layer in careful.layers:
        wanted = ("float32" if isinstance(layer, (keras.layers.BatchNormalization,
                                                  keras.layers.Rescaling, keras.layers.Dense))
                  or layer is convs[0] else None)
        if wanted:
            assert layer.compute_dtype == "float32", layer.name
    assert all(layer.compute_dtype == "bfloat16" for layer in convs[1:])
    for a, b in zip(model.get_weights(), careful.get_weights()):
        np.testing.assert_array_equal(a, b)
    back = with_policy(careful, "float32")
    assert all(layer.compute_dtype == "float32" for layer in back.layers)


@pytest.mark.slow
def test_bfloat16_run_saves_a_float32_model(tmp_path):
    from multilabel_keras import Predictor, from_folders, train

    make_folder_data(tmp_path / "data", per_folder=4)
    train(from_folders(tmp_path / "data"), tmp_path / "run", "smallervggnet", image_size=32,
          epochs=1, batch_size=8, precision="mixed_bfloat16", verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["precision"] == "mixed_bfloat16"
    predictor = Predictor.load(tmp_path / "run")
    assert policy_of(predictor.model) == "float32"
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    assert all(layer.compute_dtype == "float32" for layer in model.layers)


def test_precision_is_checked_before_anything_is_written(tmp_path):
    from multilabel_keras import from_folders, train

    make_folder_data(tmp_path / "data", per_folder=2)
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16"):
        train(from_folders(tmp_path / "data"), tmp_path / "run", image_size=32, epochs=1,
              precision="float16", verbose=0)
    assert not (tmp_path / "run").exists()


def test_cached_features_are_memory_mapped_and_served_by_rows(tmp_path):
    from multilabel_keras.training.features import rows_dataset

    features = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float32,
                                         shape=(50, 4))
    features[:] = np.arange(200, dtype=np.float32).reshape(50, 4)
    features.flush()
    mapped = np.load(tmp_path / "f.npy", mmap_mode="r")
    y = np.eye(50, 3, dtype=np.float32)
    rows = np.random.default_rng(0).permutation(50)[:30]
    got_x, got_y = zip(*[(x.numpy(), t.numpy()) for x, t in rows_dataset(mapped, y, rows, 7)])
    np.testing.assert_array_equal(np.concatenate(got_x), np.asarray(mapped)[rows])
    np.testing.assert_array_equal(np.concatenate(got_y), y[rows])
    # Shuffled: every row once per pass, a different order each pass.
    ds = rows_dataset(mapped, y, rows, 7, shuffle_seed=0)
    passes = [np.concatenate([x.numpy()[:, 0] for x, _ in ds]) for _ in range(2)]
    assert sorted(passes[0]) == sorted(np.asarray(mapped)[rows, 0])
    assert not np.array_equal(passes[0], passes[1])
