import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from multilabel_keras import LabelVocabulary, Predictor, Samples, build_model, from_folders
from multilabel_keras.cli import main
from multilabel_keras.data.images import load_images
from multilabel_keras.data.pairs import PairSampler, pair_dataset
from multilabel_keras.models.twin import EuclideanDistance, single_branch
from multilabel_keras.training.plans import TransferSchedule
from multilabel_keras.training import train_twin

from conftest import draw, write_rgb


@pytest.fixture(scope="module")
def twin():
    return build_model("xception_twin", num_classes=4, input_shape=(71, 71, 3))


def _images(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, 71, 71, 3)).astype("float32")


def test_names_shapes_and_one_shared_backbone(twin):
    assert [t.name for t in twin.inputs] == ["image_a", "image_b"]
    assert twin.output_names == ["class_a", "class_b", "same"]
    assert [tuple(s) for s in twin.output_shape] == [(None, 4), (None, 4), (None, 1)]
    encoders = [layer for layer in twin.layers if isinstance(layer, keras.Model)]
    assert [e.name for e in encoders] == ["encoder"]
    backbone = encoders[0].get_layer("backbone")
    # One set of backbone variables: the twin has them once, plus 2 dense layers.
    assert len(twin.weights) == len(backbone.weights) + 4
    x = _images()
    class_a, class_b, _ = twin.predict_on_batch({"image_a": x, "image_b": x})
    np.testing.assert_allclose(class_a, class_b, atol=1e-6)


def test_single_image_prediction_is_the_category_head_on_x_x(twin, tmp_path):
    x = _images(3, seed=1)
    class_a = twin.predict_on_batch({"image_a": x, "image_b": x})[0]
    np.testing.assert_allclose(single_branch(twin).predict_on_batch(x), class_a, atol=1e-5)
    path = str(tmp_path / "twin.keras")
    twin.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict_on_batch({"image_a": x, "image_b": x[::-1]})[2],
                               twin.predict_on_batch({"image_a": x, "image_b": x[::-1]})[2], atol=1e-5)
    vocab = LabelVocabulary().fit([{c} for c in "abcd"])
    predictor = Predictor(loaded, vocab, image_size=71)
    np.testing.assert_allclose(predictor.predict_scores(x), class_a, atol=1e-5)


def test_distance_is_safe_at_zero():
    a = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    with tf.GradientTape() as tape:
        d = EuclideanDistance()([a, tf.constant([[1.0, 2.0], [0.0, 0.0]])])
    grad = tape.gradient(d, a).numpy()
    assert np.isfinite(grad).all() and float(d[1, 0]) == pytest.approx(5.0)
    assert float(EuclideanDistance(squared=True)([a, a * 0])[1, 0]) == pytest.approx(25.0)


def _single_label(n_per_class=30, classes=("a", "b", "c", "d")):
    return Samples([f"{c}{i}.jpg" for c in classes for i in range(n_per_class)],
                   [{c} for c in classes for _ in range(n_per_class)])


@pytest.mark.parametrize("ratio", [0.5, 0.25, 0.8])
def test_pair_sampler_hits_its_positive_ratio(ratio):
    samples = _single_label()
    vocab = LabelVocabulary().fit(samples.labels)
    i, j, same = PairSampler(samples, vocab, positive_ratio=ratio, seed=3).sample(1000)
    assert abs(same.mean() - ratio) <= 0.05
    truth = np.array([samples.labels[a] == samples.labels[b] for a, b in zip(i, j)])
    np.testing.assert_array_equal(truth, same.astype(bool))
    assert (i != j).all()


def test_jaccard_pairs_for_label_sets():
    samples = Samples([f"{k}.jpg" for k in range(6)],
                      [{"a", "b"}, {"a", "b", "c"}, {"a"}, {"c"}, {"c", "d"}, {"b", "d"}])
    vocab = LabelVocabulary().fit(samples.labels)
    sampler = PairSampler(samples, vocab, 0.5, same="jaccard", jaccard=0.5, seed=0)
    i, j, same = sampler.sample(400)
    for a, b, s in zip(i, j, same):
        x, y = samples.labels[a], samples.labels[b]
        assert (len(x & y) / len(x | y) >= 0.5) == bool(s)
    assert abs(same.mean() - 0.5) <= 0.08


def test_validation_pairs_never_use_training_images(tmp_path):
    paths, labels = [], []
    for colour, split in (("red", "train"), ("blue", "val")):
        for shape in ("square", "circle"):
            for k in range(4):
                path = tmp_path / split / f"{shape}{k}.png"
                write_rgb(str(path), draw(colour, shape, seed=k))
                paths.append(str(path))
                labels.append({shape})
    samples = Samples(paths, labels)
    vocab = LabelVocabulary().fit(labels)
    val = samples.subset([i for i, p in enumerate(paths) if "/val/" in p])
    ds = pair_dataset(PairSampler(val, vocab, seed=1), vocab.transform(val.labels), 32, 4, pairs=40)
    for x, y in ds:
        for side in ("image_a", "image_b"):
            mean = x[side].numpy().reshape(-1, 32 * 32, 3).mean(1)
            assert (mean[:, 2] > mean[:, 0]).all()  # every image is a blue (validation) one
        assert y["same"].shape[1:] == (1,) and y["class_a"].shape[1:] == (2,)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no two of the")  # 4 validation images, 4 classes
def test_train_twin_with_schedule_then_predict(tmp_path, folder_data):
    samples = from_folders(folder_data, sep=None)  # classes: red_square, blue_circle …
    backbone = build_model("xception", 4, (71, 71, 3)).get_layer("backbone")
    weights = str(tmp_path / "xception_notop.weights.h5")
    backbone.save_weights(weights)
    # A random network's batch-norm statistics say nothing of its scaling: the sidecar says it.
    with open(weights + ".json", "w") as f:
        json.dump({"preprocessing": "tf"}, f)
    result = train_twin(samples, tmp_path / "run", weights=weights, image_size=71, batch_size=8,
                        schedule=TransferSchedule(1, 1, "last:2", final_epochs=1), verbose=0)
    rows = result.history
    assert [r["phase"] for r in rows] == [1, 2, 3]
    assert {"class_a_loss", "class_b_loss", "same_loss", "val_class_a_accuracy",
            "val_same_binary_accuracy"} <= set(rows[0])
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["model"] == "xception_twin" and config["loss_weights"]["same"] == 0.5
    assert config["model_kwargs"]["preprocessing"] == "tf"
    predictor = Predictor.load(tmp_path / "run")
    out = predictor.predict(samples.paths[:2])
    assert all(len(o["labels"]) == 1 for o in out)  # top-1 class
    sim = predictor.similarity(samples.paths[0], samples.paths[1])
    twin = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    pair = load_images(samples.paths[:2], 71)
    expected = twin.predict_on_batch({"image_a": pair[:1], "image_b": pair[1:]})
    expected = expected["same"] if isinstance(expected, dict) else expected[2]
    assert sim == pytest.approx(float(np.ravel(expected)[0]), abs=1e-5)
    assert os.path.isfile(tmp_path / "run" / "plot.png")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:no two of the")
def test_cli_trains_a_twin(tmp_path, folder_data, capsys):
    run = str(tmp_path / "run")
    code = main(["train", "--data", str(folder_data), "--sep", "", "--model", "xception_twin",
                 "--backbone", "mobilenetv2", "--image-size", "32", "--epochs", "1",
                 "--batch-size", "8", "--out", run, "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.load(open(os.path.join(run, "config.json")))["model_kwargs"]["backbone"] == "mobilenetv2"
    with pytest.raises(ValueError, match="needs a run of a twin model"):
        Predictor(build_model("mlp", 2, (4,)), LabelVocabulary().fit([{"a"}, {"b"}])).similarity("x", "y")
