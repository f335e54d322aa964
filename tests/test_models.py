import keras
import numpy as np
import pytest

from multilabel_keras import build_model, list_models, register_model

SHAPES = {"smallervggnet": (32, 32, 3), "mlp": (16,)}
# Backbone models have their own tests (tests/test_transfer.py) at capped sizes.
FOUNDATION = sorted(SHAPES)


def test_registry_lists_the_foundation_models():
    assert {"smallervggnet", "mlp"} <= set(list_models())


@pytest.mark.parametrize("name", FOUNDATION)
def test_builds_uncompiled_with_sigmoid_outputs(name):
    model = build_model(name, num_labels=5, input_shape=SHAPES[name])
    assert isinstance(model, keras.Model)
    assert not model.compiled
    assert model.output_shape == (None, 5)
    x = np.random.default_rng(0).uniform(0, 255, (2, *SHAPES[name])).astype("float32")
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (2, 5)
    assert model.get_layer("predictions").activation.__name__ == "sigmoid"


@pytest.mark.parametrize("name", FOUNDATION)
def test_keras_round_trip_in_safe_mode(name, tmp_path):
    model = build_model(name, num_labels=3, input_shape=SHAPES[name])
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    x = np.random.default_rng(1).uniform(0, 255, (2, *SHAPES[name])).astype("float32")
    np.testing.assert_allclose(model.predict_on_batch(x), loaded.predict_on_batch(x), atol=1e-6)


@pytest.mark.parametrize("name", FOUNDATION)
def test_weights_file_round_trip(name, tmp_path):
    first = build_model(name, num_labels=3, input_shape=SHAPES[name])
    path = str(tmp_path / f"{name}.weights.h5")
    first.save_weights(path)
    second = build_model(name, num_labels=3, input_shape=SHAPES[name], weights=path)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        build_model(name, num_labels=4, input_shape=SHAPES[name], weights=path)


def test_weights_errors(tmp_path):
    with pytest.raises(ValueError, match="no pretrained 'imagenet'"):
        build_model("smallervggnet", 2, (32, 32, 3), weights="imagenet")
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        build_model("smallervggnet", 2, (32, 32, 3), weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match=".weights.h5"):
        build_model("smallervggnet", 2, (32, 32, 3), weights="model.h5")


def test_smallervggnet_is_the_blog_network():
    model = build_model("smallervggnet", num_labels=6)
    assert model.input_shape == (None, 96, 96, 3)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 64, 64, 128, 128]
    assert model.get_layer("fc").units == 1024
    assert model.get_layer("head_dropout").rate == 0.5
    assert [model.get_layer(f"dropout{i}").rate for i in (1, 2, 3)] == [0.25] * 3
    lighter = build_model("smallervggnet", 6, (32, 32, 3), stage_dropout=0.1)
    assert [lighter.get_layer(f"dropout{i}").rate for i in (1, 2, 3)] == [0.1] * 3
    with pytest.raises(ValueError, match="at least 24x24"):
        build_model("smallervggnet", 2, (16, 16, 3))


def test_mlp_hidden_sizes_and_image_input():
    model = build_model("mlp", num_labels=4, input_shape=(2048,))
    assert [model.get_layer(f"hidden{i}").units for i in (1, 2)] == [500, 100]
    image_model = build_model("mlp", num_labels=4, input_shape=(8, 8, 3))
    assert image_model.output_shape == (None, 4)


def test_unknown_model_and_duplicate_registration():
    with pytest.raises(ValueError, match="unknown model 'nope'.*smallervggnet"):
        build_model("nope", 2)
    with pytest.raises(ValueError, match="already registered"):
        register_model("mlp")(lambda num_labels, **kw: None)
    with pytest.raises(ValueError, match="positive integer"):
        build_model("mlp", 0)


def test_smallervggnet_average_pooling_variant():
    classic = build_model("smallervggnet", 4, (64, 64, 3))
    pooled = build_model("smallervggnet", 4, (64, 64, 3), pooling="avg")
    assert pooled.get_layer("pooler") and pooled.get_layer("fc").units == 1024
    # Pools of 3, 2, 2 take 64 px to 21, 10, 5: flatten feeds 5 * 5 * 128 values, pooling 128.
    assert classic.get_layer("fc").kernel.shape == (5 * 5 * 128, 1024)
    assert pooled.get_layer("fc").kernel.shape == (128, 1024)
    with pytest.raises(ValueError, match="pooling"):
        build_model("smallervggnet", 4, (64, 64, 3), pooling="max")
