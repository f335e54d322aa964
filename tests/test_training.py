import json
import os

import keras
import numpy as np
import pytest

from sklearn.metrics import average_precision_score

from multilabel_keras import (LabelVocabulary, evaluate, from_folders, make_dataset, split_samples,
                              train)
from multilabel_keras.data.images import load_images
from multilabel_keras.runs import RunDir
from multilabel_keras.runs.records import read_history
RUN_FILES = RunDir.RUN_FILES
from multilabel_keras.training.callbacks import ExactMAP

from conftest import make_folder_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run shared by the tests of this module."""
    root = tmp_path_factory.mktemp("train")
    samples = from_folders(make_folder_data(root / "data"))
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, val = split_samples(samples, vocab, (0.75, 0.25), 0)
    result = train(train_part, root / "run", val_samples=val, vocabulary=vocab, image_size=32,
                   batch_size=8, epochs=3, verbose=0, train_map_samples=8)
    result.val_samples = val
    return samples, result


def test_run_directory_has_every_file(trained):
    _, result = trained
    assert sorted(os.listdir(result.run_dir)) == sorted(RUN_FILES)
    assert not [f for f in os.listdir(result.run_dir) if ".tmp" in f]


def test_history_and_config(trained):
    samples, result = trained
    rows = read_history(os.path.join(result.run_dir, "history.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"loss", "mAP", "val_mAP", "val_loss"} <= set(rows[0])
    config = json.load(open(os.path.join(result.run_dir, "config.json")))
    assert config["image_size"] == 32 and config["model"] == "smallervggnet"
    assert config["num_train"] + config["num_val"] == len(samples)
    assert config["epochs_run"] == 3
    best = max(rows, key=lambda r: r["val_mAP"])
    assert config["best_epoch"] == best["epoch"]


def test_saved_model_is_the_best_epoch_and_loads_safely(trained):
    _, result = trained
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"), safe_mode=True)
    assert not model.compiled  # inference copy, no optimizer state
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model.predict_on_batch(x), result.model.predict_on_batch(x), atol=1e-5)


def test_metrics_and_thresholds_come_from_validation(trained):
    _, result = trained
    metrics = json.load(open(os.path.join(result.run_dir, "metrics.json")))
    assert metrics["split"] == "validation" and metrics["num_images"] == 6
    thresholds = json.load(open(os.path.join(result.run_dir, "thresholds.json")))
    assert set(thresholds["thresholds"]) == set(result.vocabulary.classes_)
    assert "validation" in thresholds["source"]


def test_refuses_a_non_empty_run_directory(trained):
    samples, result = trained
    with pytest.raises(FileExistsError, match="not empty"):
        train(samples, result.run_dir, epochs=1, image_size=32, verbose=0)


def test_kept_epochs_val_map_equals_sklearn_on_the_saved_model(trained):
    # Oracle: scikit-learn's macro average precision over plain Keras predictions of model.keras.
    _, result = trained
    rows = read_history(os.path.join(result.run_dir, "history.csv"))
    config = json.load(open(os.path.join(result.run_dir, "config.json")))
    logged = rows[config["best_epoch"] - 1]["val_mAP"]
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"), safe_mode=True)
    val = result.val_samples
    scores = model.predict_on_batch(load_images(val.paths, 32))
    y = result.vocabulary.transform(val.labels)
    assert y.sum(0).min() > 0  # every label has a positive, so sklearn's macro mean is ours
    assert logged == pytest.approx(average_precision_score(y, scores, average="macro"), abs=1e-6)


def test_exact_map_callback_matches_sklearn(folder_data):
    samples = from_folders(folder_data)
    vocab = LabelVocabulary().fit(samples.labels)
    ds = make_dataset(samples, vocab, image_size=32, batch_size=7)
    from multilabel_keras import build_model

    model = build_model("smallervggnet", vocab.num_labels, (32, 32, 3))
    model.compile("adam", "binary_crossentropy")
    callback = ExactMAP(ds, None, keras.losses.BinaryCrossentropy())
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    x = np.concatenate([batch[0] for batch in ds])
    y = np.concatenate([batch[1] for batch in ds])
    p = model.predict_on_batch(x)
    assert logs["val_mAP"] == pytest.approx(average_precision_score(y, p, average="macro"))
    assert logs["val_loss"] == pytest.approx(float(keras.losses.BinaryCrossentropy()(y, p)), rel=1e-5)


@pytest.mark.slow
def test_training_learns_the_tiny_task(tmp_path):
    samples = from_folders(make_folder_data(tmp_path / "d", per_folder=16))
    result = train(samples, tmp_path / "run", image_size=32, batch_size=16, epochs=12, val_split=0.25,
                   augment=False, verbose=0)
    assert result.metrics["mAP"] > 0.9
    assert evaluate(result.run_dir, samples)["mAP"] > 0.9
