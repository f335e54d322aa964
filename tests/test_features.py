import json
import os

import keras
import numpy as np
import pytest

from multilabel_keras import Predictor, from_folders
from multilabel_keras.data.images import load_images
from multilabel_keras.training.features import (
    extract_features,
    feature_extractor,
    load_features,
    train_on_features,
)


@pytest.fixture
def cached(tmp_path, folder_data):
    samples = from_folders(folder_data)
    with pytest.warns(UserWarning, match="random weights"):
        index = extract_features(samples, tmp_path / "feat", "mobilenetv2", image_size=32,
                                 batch_size=5, verbose=0)
    return samples, tmp_path / "feat", index


def test_features_are_the_backbone_output_in_sample_order(cached):
    samples, folder, index = cached
    features, stored, _ = load_features(folder)
    assert features.shape == (24, 1280) and features.dtype == np.float32
    assert stored.paths == samples.paths and stored.labels == samples.labels
    assert index["backbone"] == "mobilenetv2" and index["image_size"] == 32
    extractor = feature_extractor("mobilenetv2", (32, 32, 3))
    extractor.get_layer("backbone").load_weights(str(folder / "backbone.weights.h5"))
    expected = extractor.predict_on_batch(load_images(samples.paths[:6], 32))
    np.testing.assert_allclose(features[:6], expected, rtol=1e-4, atol=1e-6)
    assert not [f for f in os.listdir(folder) if ".tmp" in f]


def test_extract_refuses_a_used_folder_and_checks_the_index(cached, tmp_path):
    samples, folder, _ = cached
    with pytest.raises(FileExistsError, match="not empty"):
        extract_features(samples, folder, "mobilenetv2", image_size=32, verbose=0)
    index = json.load(open(folder / "index.json"))
    index["dim"] = 7
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="has shape"):
        load_features(folder)


@pytest.mark.slow
def test_head_trained_on_features_joins_into_an_image_model(cached, tmp_path):
    samples, folder, _ = cached
    result = train_on_features(folder, tmp_path / "run", epochs=3, batch_size=8, val_split=0.25,
                               hidden=(16,), verbose=0)
    run = tmp_path / "run"
    assert {"model.keras", "head.keras", "labels.json", "thresholds.json", "config.json",
            "history.csv", "plot.png", "metrics.json"} <= set(os.listdir(run))
    head = keras.saving.load_model(str(run / "head.keras"), safe_mode=True)
    features, _, _ = load_features(folder)
    predictor = Predictor.load(run)
    from_images = predictor.predict_scores(samples.paths[:5])
    # The head on cached features, calibrated like every run: what the joined model scores from images.
    np.testing.assert_allclose(from_images, predictor.calibrated(head.predict_on_batch(features[:5])),
                               atol=1e-4)
    assert result.metrics["split"] == "validation" and result.metrics["num_images"] == 6
    assert json.load(open(run / "config.json"))["model"] == "mobilenetv2+mlp"
