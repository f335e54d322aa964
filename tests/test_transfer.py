import importlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from multilabel_keras import build_model, list_models
from multilabel_keras.models.layers import ImagePreprocess, preprocess_layer
from multilabel_keras.models.backbones import FAMILIES
from multilabel_keras.models.transfer import BACKBONES, build_backbone

# Small inputs each network accepts (InceptionV3 needs 75, Xception 71).
CASES = {"mobilenetv2": 32, "inceptionv3": 75, "xception": 71, "resnet50": 32, "efficientnetb0": 32}


def test_every_application_is_registered_with_a_known_preprocessing():
    assert {"inceptionv3", "mobilenetv2", "xception", "resnet50", "efficientnetb0"} <= set(list_models())
    for name, (constructor, spec) in BACKBONES.items():
        assert name in list_models()
        assert FAMILIES[constructor.__module__.rsplit(".", 1)[-1]] == spec


@pytest.mark.parametrize("name", sorted(CASES))
def test_transfer_model_structure_and_safe_round_trip(name, tmp_path):
    size = CASES[name]
    model = build_model(name, num_labels=4, input_shape=(size, size, 3))
    assert not model.compiled
    assert model.output_shape == (None, 4)
    for layer in ("backbone", "pooler", "head_dropout", "predictions"):
        model.get_layer(layer)
    assert model.get_layer("backbone").trainable  # random init: trainable by default
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(model.predict_on_batch(x), loaded.predict_on_batch(x), atol=1e-5)


def test_backbone_weights_file_is_loaded_and_frozen(tmp_path):
    backbone, _ = build_backbone("mobilenetv2", (32, 32, 3))
    path = str(tmp_path / "mobilenetv2.weights.h5")
    backbone.save_weights(path)
    model = build_model("mobilenetv2", num_labels=3, input_shape=(32, 32, 3), weights=path, hidden=16)
    inner = model.get_layer("backbone")
    assert not inner.trainable  # pretrained weights: frozen feature extractor by default
    for a, b in zip(backbone.get_weights(), inner.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("head_hidden").units == 16
    with pytest.raises(ValueError, match="does not fit backbone resnet50"):
        build_model("resnet50", num_labels=3, input_shape=(32, 32, 3), weights=path)
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        build_model("mobilenetv2", num_labels=3, input_shape=(32, 32, 3), weights="nope.weights.h5")


def test_imagenet_download_failure_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/notop.h5: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    import keras.src.applications.mobilenet_v2 as module

    monkeypatch.setattr(module.file_utils, "get_file", offline)
    with pytest.raises(ConnectionError, match=r"example.invalid.*weights='path/to/mobilenetv2.weights.h5'"):
        build_model("mobilenetv2", num_labels=3, input_shape=(96, 96, 3), weights="imagenet")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_preprocessing_equals_the_application_modules_own(name):
    # The oracle is each keras.applications module's preprocess_input, not our table.
    constructor, spec = BACKBONES[name]
    mode = spec.preprocess
    module = importlib.import_module(f"keras.applications.{constructor.__module__.rsplit('.', 1)[-1]}")
    x = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    reference = np.asarray(module.preprocess_input(x.copy()))
    ours = x if mode is None else keras.ops.convert_to_numpy(preprocess_layer(mode)(x))
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "densenet121", "vgg16"])  # tf, torch, caffe
def test_a_saved_backbone_model_loads_in_plain_keras(backbone, tmp_path):
    model = build_model(backbone, 3, (32, 32, 3))
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    # Oracle: a process that imports Keras alone, in safe mode.
    code = (f"import sys, numpy as np, keras\n"
            f"m = keras.models.load_model({str(path)!r}, safe_mode=True)\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m.predict_on_batch(np.load({str(tmp_path / 'x.npy')!r})))\n"
            f"assert not any(n.startswith('multilabel_keras') for n in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict_on_batch(x), atol=1e-5)


def test_runs_saved_with_the_old_preprocess_layer_still_load():
    for mode in ("tf", "torch", "caffe"):
        clone = ImagePreprocess.from_config(ImagePreprocess(mode).get_config())
        assert clone.mode == mode


def test_unknown_backbone_and_pooling():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("alexnet")
    with pytest.raises(ValueError, match="pooling"):
        build_model("mobilenetv2", 2, (32, 32, 3), pooling="sum")


def _bn_stats(model):
    net = model.get_layer("backbone")
    return [keras.ops.convert_to_numpy(v) for layer in net.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)]


def test_batch_norm_learns_from_scratch_and_stays_fixed_when_pretrained(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = (rng.random((8, 3)) < 0.5).astype("float32")
    scratch = build_model("mobilenetv2", 3, (32, 32, 3))
    norms = [la for la in scratch.get_layer("backbone").layers
             if isinstance(la, keras.layers.BatchNormalization)]
    assert max(la.momentum for la in norms) == 0.9  # MobileNetV2 ships 0.999
    scratch.compile(keras.optimizers.SGD(0.1), "binary_crossentropy")
    before = _bn_stats(scratch)
    conv = scratch.get_layer("backbone").get_layer("Conv1")
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    scratch.train_on_batch(x, y)
    assert any(not np.allclose(a, b) for a, b in zip(before, _bn_stats(scratch)))
    assert not np.allclose(kernel, keras.ops.convert_to_numpy(conv.kernel))

    path = str(tmp_path / "mnv2.weights.h5")
    scratch.get_layer("backbone").save_weights(path)
    tuned = build_model("mobilenetv2", 3, (32, 32, 3), weights=path, freeze_backbone=False)
    tuned.compile(keras.optimizers.SGD(0.1), "binary_crossentropy")
    before = _bn_stats(tuned)
    tuned.train_on_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, _bn_stats(tuned)))
