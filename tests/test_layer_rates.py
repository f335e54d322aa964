"""Discriminative fine-tuning rates: LayerwiseAdam, layer_decay in plans, config and CLI."""

import json

import keras
import numpy as np
import pytest

from multilabel_keras import build_model, from_folders, train
from multilabel_keras.data.images import load_images
from multilabel_keras.models.surgery import backbone_blocks, block_rate_factors
from multilabel_keras.training.compile import LayerwiseAdam
from multilabel_keras.training.config import ConfigError, TrainConfig
from multilabel_keras.training.plans import TransferSchedule, choose_plan

from conftest import calibrated_backbone


def _two_layer_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="slow")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="fast")(hidden))


def test_each_layer_moves_as_plain_adam_at_its_scaled_rate():
    rng = np.random.default_rng(0)
    model = _two_layer_model()
    start = [np.array(w) for w in model.get_weights()]
    grads = [[rng.normal(size=w.shape).astype("float32") for w in start] for _ in range(3)]
    layerwise = LayerwiseAdam(0.01, layer_factors={"slow": 0.1})
    for step in grads:
        layerwise.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step],
                                      model.trainable_variables))
    got = [np.array(w) for w in model.get_weights()]
    # Oracle: Keras' own Adam, one per layer, at the layer's rate, on the same gradients.
    for names, rate in ((("slow",), 0.001), (("fast",), 0.01)):
        variables = [keras.Variable(w) for w, v in zip(start, model.trainable_variables)
                     if v.path.split("/")[0] in names]
        indices = [i for i, v in enumerate(model.trainable_variables) if v.path.split("/")[0] in names]
        plain = keras.optimizers.Adam(rate)
        for step in grads:
            plain.apply_gradients(zip([keras.ops.convert_to_tensor(step[i]) for i in indices], variables))
        for i, variable in zip(indices, variables):
            np.testing.assert_allclose(got[i], np.array(variable), rtol=1e-5, atol=1e-7)


def test_block_factors_follow_the_backbone_blocks():
    net = build_model("mobilenetv2", 2, (32, 32, 3)).get_layer("backbone")
    factors = block_rate_factors(net, 0.5)
    blocks = backbone_blocks(net)
    assert set(factors) == {layer.name for layer in net.layers}
    names = [layer.name for layer in net.layers]
    for depth, (_, first) in enumerate(reversed(blocks), start=1):
        assert factors[names[first]] == pytest.approx(0.5 ** depth)
    assert factors[names[-1]] == 0.5       # layers after the last block's start are in it
    assert block_rate_factors(net, 1.0) == {}


def test_layer_decay_in_the_plan_and_its_refusals():
    model = build_model("mobilenetv2", 3, (32, 32, 3))
    config = TrainConfig("image", model="mobilenetv2", weights="w.weights.h5", epochs=4,
                         layer_decay=0.7, unfreeze_from="all")
    plan = choose_plan(config, model)
    assert plan.schedule.layer_decay == 0.7 and plan.layer_factors
    assert "fine-tune every backbone block, each block down at 0.7 times" in plan.reason
    optimizer = plan.phases(4, 10)[0].optimizer
    assert isinstance(optimizer, LayerwiseAdam)
    assert optimizer.layer_factors["block_16_project"] == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="layer_decay is not used by plan 'none'"):
        choose_plan(TrainConfig("image", epochs=4, layer_decay=0.7), model)
    with pytest.raises(ConfigError, match=r"layer_decay must be a number in \(0, 1\], got 1.5"):
        TrainConfig("image", layer_decay=1.5)
    with pytest.raises(ValueError, match="layer_decay needs optimizer='adam_cosine'"):
        TransferSchedule(1, 1, layer_decay=0.5)


def test_cli_spells_layer_decay_as_its_flag(tmp_path, capsys):
    from multilabel_keras.cli import main

    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--layer-decay",
                 "0"])
    assert code == 2
    assert "--layer-decay must be a number in (0, 1], got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_lp_ft_over_every_block_with_layer_decay_trains_and_records(tmp_path, folder_data):
    samples = from_folders(folder_data)
    weights = calibrated_backbone(str(tmp_path / "b.weights.h5"), load_images(samples.paths, 32))
    train(samples, tmp_path / "run", "mobilenetv2", image_size=32, epochs=2, batch_size=8,
          weights=weights, unfreeze_from="all", layer_decay=0.6, verbose=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["schedule"]["layer_decay"] == 0.6
    assert config["schedule"]["unfreeze_from"] == "all"
    assert config["settings"]["settings"]["layer_decay"] == 0.6
