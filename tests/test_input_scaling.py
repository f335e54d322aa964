"""How a weights file wants its pixels: stated, read from a JSON beside it, or chosen by a probe."""

import json
import os
import warnings

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

from multilabel_keras import LabelVocabulary, from_folders, split_samples, train
from multilabel_keras.cli import main
from multilabel_keras.data.images import load_images
from multilabel_keras.models.layers import preprocess_layer
from multilabel_keras.models.transfer import build_backbone, build_encoder
from multilabel_keras.training.config import ConfigError
from multilabel_keras.training.input_scaling import sidecar_preprocessing
from multilabel_keras.training.scaling_measure import choose_scaling, first_batch_norm, pick_scaling

from conftest import calibrated_backbone, make_folder_data

PROBE_WARNING = "does not say how it wants its pixels"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_folder_data(tmp_path_factory.mktemp("scaling") / "data", per_folder=6)
    samples = from_folders(root)
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, val = split_samples(samples, vocab, (0.75, 0.25), 0)
    return root, train_part, val, vocab


@pytest.fixture(scope="module")
def weights(tmp_path_factory, data):
    path = str(tmp_path_factory.mktemp("w") / "mnv2.weights.h5")
    return calibrated_backbone(path, load_images(data[1].paths, 32))


def _hand_probe(weights, mode, fit_paths, fit_y, score_paths, score_y):
    """The probe written out with another encoder builder and scikit-learn alone."""
    encoder = build_encoder("mobilenetv2", (32, 32, 3), weights, preprocessing=mode)
    fit_x = np.asarray(encoder.predict(load_images(fit_paths, 32), verbose=0), np.float64)
    score_x = np.asarray(encoder.predict(load_images(score_paths, 32), verbose=0), np.float64)
    scaler = StandardScaler().fit(fit_x)
    aps = []
    for j in range(fit_y.shape[1]):
        if len(np.unique(fit_y[:, j])) < 2 or not score_y[:, j].any():
            continue
        model = LogisticRegression(C=0.1, max_iter=300).fit(scaler.transform(fit_x), fit_y[:, j])
        aps.append(average_precision_score(score_y[:, j],
                                           model.predict_proba(scaler.transform(score_x))[:, 1]))
    return float(np.mean(aps))


def test_probe_scores_equal_a_hand_written_probe(data, weights):
    _, train_part, val, vocab = data
    choice = choose_scaling("mobilenetv2", weights, train_part, val, vocab, 32, method="probe")
    assert choice.family == "tf" and set(choice.scores) == {"tf", "torch", "caffe"}
    assert choice.images == (len(train_part), len(val))
    fit_y = vocab.transform(train_part.labels)
    score_y = vocab.transform(val.labels)
    for mode, score in choice.scores.items():
        expected = _hand_probe(weights, mode, train_part.paths, fit_y, val.paths, score_y)
        assert score == pytest.approx(expected, abs=1e-3), mode
    assert choice.mode == pick_scaling(choice.scores, "tf")


def _calibrated_under(mode, path, images):
    """Random filters whose batch norms hold the statistics of ``images`` scaled by ``mode``."""
    net = build_backbone("mobilenetv2", (32, 32, 3))[0]
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    scaled = images if mode == "none" else keras.ops.convert_to_numpy(preprocess_layer(mode)(images))
    net(scaled, training=True)
    net.save_weights(path)
    return path


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe", "none"])
def test_batch_norm_statistics_name_the_scaling_the_weights_were_fitted_under(data, tmp_path, mode):
    _, train_part, val, vocab = data
    # Statistics from the validation images, the choice from the training images: other pictures.
    path = _calibrated_under(mode, str(tmp_path / f"{mode}.weights.h5"), load_images(val.paths, 32))
    choice = choose_scaling("mobilenetv2", path, train_part, None, vocab, 32)
    assert choice.method == "batch_norm" and choice.mode == mode, choice.scores
    assert set(choice.scores) == {"tf", "torch", "caffe", "none"}
    assert choice.scores[mode] == min(choice.scores.values())


def test_networks_without_a_leading_batch_norm_get_the_probe():
    assert first_batch_norm(build_backbone("vgg16", (32, 32, 3))[0]) is None
    assert first_batch_norm(build_backbone("convnexttiny", (32, 32, 3))[0]) is None
    assert first_batch_norm(build_backbone("resnet50", (32, 32, 3))[0]).name == "conv1_bn"


def test_the_familys_own_scaling_wins_ties_within_the_margin():
    assert pick_scaling({"tf": 0.700, "torch": 0.709, "caffe": 0.2}, "tf") == "tf"
    assert pick_scaling({"tf": 0.700, "torch": 0.711, "caffe": 0.2}, "tf") == "torch"
    assert pick_scaling({"tf": 0.5, "torch": 0.4, "caffe": 0.9}, "tf", margin=0.5) == "tf"
    assert pick_scaling({"tf": float("nan"), "torch": 0.4, "caffe": 0.3}, "tf") == "torch"
    assert pick_scaling({"tf": float("nan"), "torch": float("nan")}, "tf") == "tf"


def test_unsaid_scaling_is_probed_warned_recorded_and_built(data, weights, tmp_path):
    _, train_part, val, vocab = data
    with pytest.warns(UserWarning, match=PROBE_WARNING) as caught:
        train(train_part, str(tmp_path / "run"), "mobilenetv2", val_samples=val,
                       vocabulary=vocab, weights=weights, epochs=1, image_size=32, verbose=0)
    warning = next(w for w in caught if PROBE_WARNING in str(w.message))
    assert warning.filename == __file__  # it points at the user's call
    line = str(warning.message)
    assert "\n" not in line and weights in line and "--preprocessing" in line
    assert "Say model_kwargs={'preprocessing': 'tf'}" in line  # what train() takes
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    probe = config["input_scaling"]
    chosen = probe["chosen"]
    assert f"chose preprocessing {chosen!r}" in line
    assert probe["method"] == "batch_norm" and probe["family"] == "tf"
    assert set(probe["scores"]) == {"tf", "torch", "caffe", "none"}
    # The weights' batch norms were fitted on tf-scaled images of this kind.
    assert chosen == "tf"
    # The choice is a stated setting from now on: a resumed run builds the same model.
    assert config["model_kwargs"]["preprocessing"] == chosen
    assert config["settings"]["settings"]["model_kwargs"] == {"preprocessing": chosen}
    saved = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(saved.get_layer("preprocess")(pixels))
    want = keras.ops.convert_to_numpy(preprocess_layer(chosen)(pixels))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def _probe_warnings(record):
    return [w for w in record if PROBE_WARNING in str(w.message)]


def test_stated_or_sidecar_scaling_skips_the_probe(data, weights, tmp_path):
    _, train_part, val, vocab = data
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(train_part, str(tmp_path / "said"), "mobilenetv2", val_samples=val, vocabulary=vocab,
              weights=weights, epochs=1, image_size=32, verbose=0,
              model_kwargs={"preprocessing": "caffe"})
    assert not _probe_warnings(record)
    copy = str(tmp_path / "copy.weights.h5")
    with open(weights, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    with open(copy + ".json", "w", encoding="utf-8") as f:
        json.dump({"preprocessing": "torch"}, f)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train(train_part, str(tmp_path / "sidecar"), "mobilenetv2", val_samples=val,
              vocabulary=vocab, weights=copy, epochs=1, image_size=32, verbose=0)
    assert not _probe_warnings(record)
    with open(tmp_path / "sidecar" / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["model_kwargs"]["preprocessing"] == "torch"
    assert config["input_scaling"] is None


def test_a_bad_sidecar_is_named(tmp_path):
    path = str(tmp_path / "w.weights.h5")
    with open(path + ".json", "w", encoding="utf-8") as f:
        f.write('{"preprocessing": "rgb"}')
    with pytest.raises(ValueError, match=r"w\.weights\.h5\.json must hold .*its preprocessing is 'rgb'$"):
        sidecar_preprocessing(path)
    bad = {"{not json": r"w\.weights\.h5\.json is not valid JSON",
           "[" * 100000: r"w\.weights\.h5\.json is nested too deeply",  # the decoder's stack
           '["' + "x" * 3000 + '"]': r"it holds \['x{60,}\.\.\.$"}  # a long content is cut
    for text, message in bad.items():
        with open(path + ".json", "w", encoding="utf-8") as f:
            f.write(text)
        with pytest.raises(ValueError, match=message) as caught:
            sidecar_preprocessing(path)
        assert len(str(caught.value)) < 300 and "\n" not in str(caught.value)
    assert sidecar_preprocessing(str(tmp_path / "none.weights.h5")) is None
    os.mkdir(tmp_path / "d.weights.h5.json")  # a folder where the JSON should be is named
    with pytest.raises(ValueError, match=r"d\.weights\.h5\.json is not a regular file"):
        sidecar_preprocessing(str(tmp_path / "d.weights.h5"))
    assert sorted(os.listdir(tmp_path)) == ["d.weights.h5.json", "w.weights.h5.json"]


def test_auto_without_pretrained_weights_is_refused(data, tmp_path, capsys):
    root, train_part, _, _ = data
    with pytest.raises(ConfigError, match="model_kwargs.preprocessing 'auto' chooses"):
        train(train_part, str(tmp_path / "run"), "mobilenetv2", epochs=1, image_size=32,
              model_kwargs={"preprocessing": "auto"})
    for weights in (None, str(tmp_path / "w.weights.h5")):  # no backbone to measure either way
        with pytest.raises(ConfigError, match="model_kwargs.preprocessing 'auto' measures how a "
                           "keras.applications backbone's weights .* 'smallervggnet' is not one"):
            train(train_part, str(tmp_path / "run"), "smallervggnet", epochs=1, image_size=32,
                  weights=weights, model_kwargs={"preprocessing": "auto"})
    for value in ("", "Torch", 3):
        with pytest.raises(ConfigError, match="model_kwargs.preprocessing must be one of tf, "
                           "torch, caffe, none or auto; got"):
            train(train_part, str(tmp_path / "run"), "mobilenetv2", epochs=1, image_size=32,
                  model_kwargs={"preprocessing": value})
    assert not (tmp_path / "run").exists()
    code = main(["train", "--data", str(root), "--out", str(tmp_path / "cli"), "--model",
                 "mobilenetv2", "--preprocessing", "auto", "--epochs", "1", "--image-size", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "--preprocessing 'auto' chooses" in err and "Traceback" not in err
    assert not (tmp_path / "cli").exists()


def test_extracted_features_measure_record_and_rejoin_the_same_scaling(data, tmp_path):
    from multilabel_keras.training.features import extract_features, join_head, load_features

    _, train_part, val, _ = data
    weights = _calibrated_under("torch", str(tmp_path / "torch.weights.h5"),
                                load_images(val.paths, 32))
    with pytest.warns(UserWarning, match=PROBE_WARNING) as caught:
        index = extract_features(train_part, str(tmp_path / "features"), "mobilenetv2", weights,
                                 image_size=32, verbose=0)
    assert "Say preprocessing='torch'" in str(caught[0].message)  # extract_features' argument
    assert index["preprocessing"] == "torch" and index["input_scaling"]["method"] == "batch_norm"
    features, _, _ = load_features(str(tmp_path / "features"))
    head = keras.Sequential([keras.Input((features.shape[1],)), keras.layers.Dense(3)])
    joined = join_head(str(tmp_path / "features"), head)
    images = load_images(train_part.paths[:4], 32)
    # The stored features, through the head, are the oracle for the rejoined model.
    np.testing.assert_allclose(np.asarray(joined.predict_on_batch(images)),
                               np.asarray(head.predict_on_batch(np.asarray(features[:4]))),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="preprocessing must be one of tf, torch, caffe, none or auto"):
        extract_features(train_part, str(tmp_path / "other"), "mobilenetv2", weights,
                         image_size=32, verbose=0, preprocessing="rgb")
    assert not (tmp_path / "other").exists()
    # A damaged index is named before anything trains or joins.
    index_path = tmp_path / "features" / "index.json"
    with open(index_path, encoding="utf-8") as f:
        stored = json.load(f)
    with open(index_path, "w", encoding="utf-8") as f:
        json.dump({**stored, "preprocessing": "auto"}, f)
    with pytest.raises(ValueError, match=r"features.index\.json: 'preprocessing' must be one of"):
        join_head(str(tmp_path / "features"), head)


@pytest.mark.filterwarnings("ignore:no two of the")
def test_the_twin_measures_and_builds_the_same_scaling(data, tmp_path):
    from multilabel_keras import train_twin

    root, _, val, _ = data
    weights = _calibrated_under("caffe", str(tmp_path / "caffe.weights.h5"),
                                load_images(val.paths, 32))
    samples = from_folders(root, sep=None)  # one class per image: red_square …
    with pytest.warns(UserWarning, match=PROBE_WARNING) as caught:
        train_twin(samples, tmp_path / "run", weights=weights, backbone="mobilenetv2",
                   image_size=32, batch_size=8, epochs=1, verbose=0)
    assert next(w for w in caught if PROBE_WARNING in str(w.message)).filename == __file__
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["input_scaling"]["chosen"] == "caffe"
    assert config["model_kwargs"]["preprocessing"] == "caffe"
    model = keras.models.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    encoder = model.get_layer("encoder")
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder.get_layer("preprocess")(pixels)),
        keras.ops.convert_to_numpy(preprocess_layer("caffe")(pixels)), rtol=1e-5, atol=1e-3)


def test_a_run_resumed_from_before_scalings_were_measured_keeps_the_familys(data, weights,
                                                                          tmp_path):
    import shutil

    from multilabel_keras.training.config import TrainConfig
    from multilabel_keras.training.input_scaling import settle_scaling

    _, train_part, val, vocab = data
    # A JSON written since the run began does not change what it was trained with.
    weights = shutil.copy(weights, tmp_path / "w.weights.h5")
    with open(f"{weights}.json", "w", encoding="utf-8") as f:
        json.dump({"preprocessing": "torch"}, f)
    config = TrainConfig("image", model="mobilenetv2", weights=weights, image_size=32)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        choice, same = settle_scaling(config, "mobilenetv2", train_part, val, vocab, 32, 0,
                                      measure=False)
    assert choice is None and same.model_kwargs is None and not _probe_warnings(record)
    os.remove(f"{weights}.json")
    choice, measured = settle_scaling(config, "mobilenetv2", train_part, val, vocab, 32, 0)
    assert measured.model_kwargs == {"preprocessing": choice.mode}
    assert TrainConfig.from_json(measured.to_json()).model_kwargs == {"preprocessing": choice.mode}


def test_too_few_images_for_the_probe_is_one_clear_line(data, weights, tmp_path, monkeypatch, capsys):
    from multilabel_keras.training import scaling_measure

    root, train_part, _, vocab = data
    # A network without a batch norm up front (VGG, ConvNeXt) is measured by the probe.
    monkeypatch.setattr(scaling_measure, "first_batch_norm", lambda net: None)
    with pytest.raises(ConfigError, match=r"model_kwargs.preprocessing cannot be measured: 1 training and 0 validation "
                       r"images are too few to probe how .* wants its pixels .*; say it"):
        train(train_part.subset([0]), str(tmp_path / "run"), "mobilenetv2", weights=weights,
              val_split=0, epochs=1, image_size=32)
    assert not (tmp_path / "run").exists()
    with pytest.raises(scaling_measure.TooFewImages):
        choose_scaling("mobilenetv2", weights, train_part.subset(range(6)), None, vocab, 32)


def test_a_quiet_measured_cli_run_prints_the_choice_and_nothing_else(data, weights, tmp_path, capfd,
                                                                    caplog):
    import logging

    root = data[0]
    with pytest.warns(UserWarning, match=PROBE_WARNING):  # pytest records it; the CLI prints it
        code = main(["train", "--data", str(root), "--out", str(tmp_path / "run"), "--model",
                     "mobilenetv2", "--weights", weights, "--epochs", "1", "--image-size", "32",
                     "--quiet"])
    # TensorFlow's retracing notes (several models, a short last batch) stay off it.
    with caplog.at_level(logging.WARNING):
        logging.getLogger("tensorflow").warning(
            "5 out of the last 8 calls to <function f> triggered tf.function retracing.")
        logging.getLogger("tensorflow").warning("another note")
    assert [r.getMessage() for r in caplog.records if r.name == "tensorflow"] == ["another note"]
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 0
    assert len(err) == 1 and err[0].startswith('{"run": '), err  # the result, nothing else
