import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from multilabel_keras import Predictor, build_model, from_folders, train
from multilabel_keras.runs.records import read_history
from multilabel_keras.models.transfer import build_backbone
from multilabel_keras.models.surgery import freeze_backbone, resolve_start, unfreeze_from
from multilabel_keras.training.plans import TransferSchedule, fine_tune


def _snapshot(layers):
    return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in layers}


def _changed(before, layers):
    return {
        layer.name
        for layer in layers
        if any(not np.array_equal(a, b) for a, b in zip(before.get(layer.name, []), layer.get_weights()))
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


def test_blocks_follow_each_family_naming():
    xception, _ = build_backbone("xception", (71, 71, 3))
    names = [layer.name for layer in xception.layers]
    start = resolve_start(xception, "last:2")
    assert start == resolve_start(xception, "block13")
    assert names[start - 1].startswith(("block12", "add"))  # nothing of block 13 left before it
    assert all(not n.startswith("block13") for n in names[:start])

    inception, _ = build_backbone("inceptionv3", (75, 75, 3))
    names = [layer.name for layer in inception.layers]
    # Keras' own InceptionV3 recipe trains "the top 2 inception blocks" from layer 249.
    assert resolve_start(inception, "mixed9") == names.index("mixed8") + 1 == 249
    assert resolve_start(inception, "last:2") == 249
    with pytest.raises(ValueError, match="has only 11 blocks"):
        resolve_start(inception, "last:12")
    with pytest.raises(ValueError, match="last:N"):
        resolve_start(inception, "last:x")


def test_schedule_validates_its_phases():
    assert TransferSchedule(2, 3, final_epochs=1).phases() == [(1, 2, True), (2, 3, True), (3, 1, False)]
    with pytest.raises(ValueError, match="no epochs"):
        TransferSchedule(0, 0)
    with pytest.raises(ValueError, match="freeze_epochs"):
        TransferSchedule(-1, 2)


@pytest.mark.slow
def test_train_runs_every_phase_into_one_history(tmp_path, folder_data):
    # VGG16: few layers, so five epochs in three phases trace quickly.
    backbone, _ = build_backbone("vgg16", (32, 32, 3))
    path = str(tmp_path / "vgg16.weights.h5")
    backbone.save_weights(path)
    pretrained = _snapshot(backbone.layers)
    schedule = TransferSchedule(2, 2, "last:1", finetune_learning_rate=0.01, final_epochs=1)
    result = train(from_folders(folder_data), tmp_path / "run", "vgg16", weights=path,
                   schedule=schedule, image_size=32, batch_size=8, val_split=0.25, verbose=0,
                   train_map_samples=8)
    rows = read_history(str(tmp_path / "run" / "history.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["phase"] for r in rows] == [1, 1, 2, 2, 3]
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["schedule"]["unfreeze_from"] == "last:1" and config["epochs"] == 5
    net = result.model.get_layer("backbone")
    # Whichever epoch was best, nothing before the last block moved.
    assert _changed(pretrained, net.layers) <= {"block5_conv1", "block5_conv2", "block5_conv3"}
    predictor = Predictor.load(tmp_path / "run")
    assert len(predictor.predict([from_folders(folder_data).paths[0]])[0]["scores"]) == 4


def test_schedule_needs_a_backbone(tmp_path, folder_data):
    with pytest.raises(ValueError, match="no nested 'backbone' layer"):
        train(from_folders(folder_data), tmp_path / "run", "smallervggnet", image_size=32,
              schedule=TransferSchedule(1, 1), verbose=0)
