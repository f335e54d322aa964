import keras
import numpy as np
import pytest
import tensorflow as tf

from multilabel_keras import build_model
from multilabel_keras.models.transfer import build_backbone
from multilabel_keras.schedule import fine_tune, freeze_backbone, unfreeze_from


def _snapshot(layers):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in layers}


def _changed(before, layers):
    return {
        layer.name
        for layer in layers
        if any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))
    }


@pytest.fixture
def pretrained_model(tmp_path):
    # DenseNet: a randomly initialised MobileNetV2 in inference mode shrinks
    # activations to ~1e-12, so no gradient would reach its weights at all.
    backbone, _ = build_backbone("densenet121", (32, 32, 3))
    path = str(tmp_path / "backbone.weights.h5")
    backbone.save_weights(path)
    return build_model("densenet121", num_labels=3, input_shape=(32, 32, 3), weights=path)


def _data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = (rng.random((16, 3)) < 0.5).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_phase_one_trains_the_head_only_then_phase_two_from_the_named_block(pretrained_model):
    model = pretrained_model
    net = model.get_layer("backbone")
    freeze_backbone(model)
    before_backbone = _snapshot(net.layers)
    head = [model.get_layer("predictions")]
    before_head = _snapshot(head)
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit(_data(), epochs=1, verbose=0, shuffle=False)
    assert not _changed(before_backbone, net.layers)  # every backbone weight, BN stats too
    assert _changed(before_head, head) == {"predictions"}

    before = _snapshot(net.layers)
    fine_tune(model, _data(), epochs=1, start="conv5_block16", learning_rate=0.05, verbose=0)
    changed = _changed(before, net.layers)
    names = [layer.name for layer in net.layers]
    first = names.index("conv5_block16_0_bn")
    assert changed, "fine-tuning changed nothing"
    assert all(names.index(n) >= first for n in changed), changed
    assert {"conv5_block16_1_conv", "conv5_block16_2_conv"} <= changed
    assert not any(isinstance(net.get_layer(n), keras.layers.BatchNormalization) for n in changed)


def test_unfreeze_from_reports_and_rejects_unknown_names(pretrained_model):
    unfrozen = unfreeze_from(pretrained_model, "conv5_block16")
    assert unfrozen == ["conv5_block16_1_conv", "conv5_block16_2_conv"]
    with pytest.raises(ValueError, match="no layer named 'block99'"):
        unfreeze_from(pretrained_model, "block99")
