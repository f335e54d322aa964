import json

import keras
import numpy as np
import pytest

from multilabel_keras import Predictor, build_model, from_folders, train
from multilabel_keras.data.images import load_images
from multilabel_keras.losses import PairwiseSoftmaxLoss
from multilabel_keras.models.outputs import label_probabilities


def test_softmax2_head_shape_and_names():
    model = build_model("mobilenetv2", 5, (32, 32, 3), head="softmax2")
    assert model.output_shape == (None, 5, 2)
    assert model.get_layer("predictions").__class__.__name__ == "Softmax"
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = np.asarray(model.predict_on_batch(x))
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="head must be"):
        build_model("mobilenetv2", 5, (32, 32, 3), head="softmax3")


def test_pairwise_softmax_loss_equals_bce_on_the_present_channel():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 3, 2)).astype("float32")
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = (rng.random((4, 3)) < 0.5).astype("float32")
    expected = -np.mean(y * np.log(probs[..., 1]) + (1 - y) * np.log(probs[..., 0]))
    bce = keras.losses.BinaryCrossentropy()(y, probs[..., 1])
    assert float(PairwiseSoftmaxLoss()(y, probs)) == pytest.approx(expected, rel=1e-5)
    assert float(PairwiseSoftmaxLoss(from_logits=True)(y, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(bce) == pytest.approx(expected, rel=1e-4)
    restored = PairwiseSoftmaxLoss.from_config(PairwiseSoftmaxLoss(from_logits=True).get_config())
    assert restored.from_logits


def test_label_probabilities_rejects_other_layouts():
    assert label_probabilities(np.zeros((2, 3))).shape == (2, 3)
    with pytest.raises(ValueError, match="labels, 2"):
        label_probabilities(np.zeros((2, 3, 4)))


@pytest.mark.slow
def test_softmax2_run_predicts_per_label_probabilities(tmp_path, folder_data):
    samples = from_folders(folder_data)
    result = train(samples, tmp_path / "run", "vgg16", model_kwargs={"head": "softmax2"},
                   image_size=32, batch_size=8, epochs=2, val_split=0.25, verbose=0,
                   train_map_samples=8)
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["loss"] == "softmax2" and config["model_kwargs"] == {"head": "softmax2"}
    assert np.isfinite(result.history[-1]["val_loss"])
    predictor = Predictor.load(tmp_path / "run")
    assert predictor.model.output_shape == (None, 4, 2)
    scores = predictor.predict_scores(samples.paths[:3])
    assert scores.shape == (3, 4)
    raw = np.asarray(predictor.model.predict_on_batch(load_images(samples.paths[:3], 32)))
    np.testing.assert_allclose(scores, predictor.calibrated(raw[..., 1]), atol=1e-6)
